package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ActionSpec holds exactly one plugin with its settings.
//
// +kubebuilder:validation:XValidation:rule="(has(self.webhook) ? 1 : 0) + (has(self.nats) ? 1 : 0) + (has(self.log) ? 1 : 0) == 1",message="exactly one plugin must be set: webhook, nats or log"
type ActionSpec struct {
	// Description is free text.
	// +optional
	Description string `json:"description,omitempty"`

	// Webhook POSTs the task event as a CloudEvent over HTTP (binary mode).
	// +optional
	Webhook *WebhookAction `json:"webhook,omitempty"`

	// NATS republishes the task event to a NATS subject.
	// +optional
	NATS *NATSAction `json:"nats,omitempty"`

	// Log writes the task event to the actions service's log.
	// +optional
	Log *LogAction `json:"log,omitempty"`
}

// WebhookAction POSTs the task event to a URL.
type WebhookAction struct {
	// URL to POST to.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('http://') || self.startsWith('https://'))",message="url must be an absolute http:// or https:// URL"
	URL string `json:"url"`

	// Headers added to the request.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Headers []WebhookHeader `json:"headers,omitempty"`

	// Timeout of one attempt: more than 0, at most 30s. The default is 10s.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('30s')",message="timeout must be more than 0s and at most 30s"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Retries after a failed attempt, with exponential backoff. The default is 3.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Retries *int32 `json:"retries,omitempty"`
}

// WebhookHeader is one HTTP header, given as a value or taken from a Secret.
//
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueFrom)",message="set exactly one of value and valueFrom"
type WebhookHeader struct {
	// Name of the header.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`

	// Value of the header.
	// +optional
	Value *string `json:"value,omitempty"`

	// ValueFrom takes the value from a key of a Secret in the Task's namespace.
	// +optional
	ValueFrom *SecretKeySelector `json:"valueFrom,omitempty"`
}

// SecretKeySelector selects a key of a Secret in the same namespace.
type SecretKeySelector struct {
	// Name of the Secret.
	// +required
	Name ObjectName `json:"name"`
	// Key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// NATSAction republishes the task event to a subject.
type NATSAction struct {
	// Subject to publish to: NATS tokens separated by dots, no wildcards.
	// +required
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^.*> \t\r\n]+([.][^.*> \t\r\n]+)*$`
	Subject string `json:"subject"`
}

// LogAction writes the task event to the actions service's log. It has no settings.
type LogAction struct{}

// ActionStatus records the last run of an Action.
type ActionStatus struct {
	// LastRun is when the Action last ran.
	// +optional
	LastRun *metav1.Time `json:"lastRun,omitempty"`

	// LastSuccess is when the Action last succeeded.
	// +optional
	LastSuccess *metav1.Time `json:"lastSuccess,omitempty"`

	// LastError is the error of the last run, empty if it succeeded.
	// +optional
	LastError string `json:"lastError,omitempty"`

	// Conditions: Ready says whether the last run succeeded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Action is a plugin run after a Task succeeds or fails.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=orca
// +kubebuilder:printcolumn:name="LastRun",type=string,JSONPath=`.status.lastRun`
// +kubebuilder:printcolumn:name="LastError",type=string,JSONPath=`.status.lastError`
type Action struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   ActionSpec   `json:"spec"`
	Status ActionStatus `json:"status,omitempty"`
}

// ActionList is a list of Actions.
//
// +kubebuilder:object:root=true
type ActionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Action `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Action{}, &ActionList{})
}
