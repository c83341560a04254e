package v1alpha1

// ObjectName names another object in the same namespace: a Task, an Ignitor, an
// ignition or an Action. It must be a lowercase RFC 1123 subdomain, as every
// Kubernetes object name is.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",messageExpression="'\"' + self + '\" is not a valid object name: use lowercase letters, digits, \\'-\\' and \\'.\\', starting and ending with a letter or digit'"
type ObjectName string
