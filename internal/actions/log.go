package actions

import (
	"context"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

func init() {
	register("log", func(d Deps) Plugin { return &logPlugin{deps: d} })
}

// logPlugin writes the task event to the service's log.
type logPlugin struct {
	deps Deps
}

func (l *logPlugin) Selected(spec *orcav1.ActionSpec) bool { return spec.Log != nil }

func (l *logPlugin) Run(ctx context.Context, r Run) error {
	e, res := r.Delivery.Event, r.Delivery.Task.Result
	l.deps.Log.InfoContext(ctx, "task event",
		"action", r.Action.Name, "namespace", res.Namespace, "task", res.Task,
		"type", e.Type(), "id", e.ID(), "source", e.Source(), "run", r.Delivery.Run(),
		"pod", res.Pod, "initiator", res.Initiator, "exitCode", res.ExitCode,
		"reason", res.Reason, "message", res.Message, "finishedAt", res.FinishedAt)
	return nil
}
