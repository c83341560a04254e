package dispatcher

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/join"
)

// Index names of the Task cache: each maps a Task to the names that start it.
const (
	IndexStartOnIgnition = "spec.startOnIgnition"
	IndexStartOnSuccess  = "spec.startOnSuccess"
	IndexStartOnFailure  = "spec.startOnFailure"
	// IndexStartWhen maps a Task to the Tasks its startWhen condition names.
	IndexStartWhen = "spec.startWhen"
)

// AddIndexes registers the Task indexes the dispatcher looks events up with.
func AddIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	for field, names := range map[string]func(*orcav1.Task) []orcav1.ObjectName{
		IndexStartOnIgnition: func(t *orcav1.Task) []orcav1.ObjectName { return t.Spec.StartOnIgnition },
		IndexStartOnSuccess:  func(t *orcav1.Task) []orcav1.ObjectName { return t.Spec.StartOnSuccess },
		IndexStartOnFailure:  func(t *orcav1.Task) []orcav1.ObjectName { return t.Spec.StartOnFailure },
		IndexStartWhen:       joinedTasks,
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

// joinedTasks returns the Tasks that t's startWhen condition names; none when it
// has none, or it does not compile.
func joinedTasks(t *orcav1.Task) []orcav1.ObjectName {
	if t.Spec.StartWhen == nil {
		return nil
	}
	p, err := join.Compile(t.Spec.StartWhen)
	if err != nil {
		return nil
	}
	out := make([]orcav1.ObjectName, len(p.Tasks))
	for i, n := range p.Tasks {
		out[i] = orcav1.ObjectName(n)
	}
	return out
}
