package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of Orca's resources.
	GroupVersion = schema.GroupVersion{Group: "sirocco.cloud", Version: "v1alpha1"}

	// SchemeBuilder registers Orca's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds Orca's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
