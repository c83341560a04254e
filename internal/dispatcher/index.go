package dispatcher

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// Index names of the Task cache: each maps a Task to the names that start it.
const (
	IndexStartOnIgnition = "spec.startOnIgnition"
	IndexStartOnSuccess  = "spec.startOnSuccess"
	IndexStartOnFailure  = "spec.startOnFailure"
)

// AddIndexes registers the Task indexes the dispatcher looks events up with.
func AddIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	for field, names := range map[string]func(*orcav1.Task) []orcav1.ObjectName{
		IndexStartOnIgnition: func(t *orcav1.Task) []orcav1.ObjectName { return t.Spec.StartOnIgnition },
		IndexStartOnSuccess:  func(t *orcav1.Task) []orcav1.ObjectName { return t.Spec.StartOnSuccess },
		IndexStartOnFailure:  func(t *orcav1.Task) []orcav1.ObjectName { return t.Spec.StartOnFailure },
	} {
		err := indexer.IndexField(ctx, &orcav1.Task{}, field, func(o client.Object) []string {
			list := names(o.(*orcav1.Task))
			out := make([]string, len(list))
			for i, n := range list {
				out[i] = string(n)
			}
			return out
		})
		if err != nil {
			return err
		}
	}
	return nil
}
