// Package scheme builds the runtime.Scheme of Orca's clients: the Kubernetes
// built-in types and Orca's CRD types.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// New returns a scheme with the Kubernetes built-in types and Orca's types.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := orcav1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
