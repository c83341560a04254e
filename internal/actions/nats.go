package actions

import (
	"context"
	"fmt"
	"strings"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

func init() {
	register("nats", func(d Deps) Plugin { return &natsPlugin{deps: d} })
}

// natsPlugin republishes the task event, as received, to a NATS subject in binary
// content mode.
type natsPlugin struct {
	deps Deps
}

// reservedSubjects are Orca's own event subjects: republishing a task event there
// would start Tasks or Actions again, or pose as a dead letter.
var reservedSubjects = []string{bus.SubjectIgnited, bus.SubjectTaskSucceeded, bus.SubjectTaskFailed, bus.SubjectDeadLetter}

func (n *natsPlugin) Selected(spec *orcav1.ActionSpec) bool { return spec.NATS != nil }

func (n *natsPlugin) Run(_ context.Context, r Run) error {
	subject := r.Action.Spec.NATS.Subject
	for _, reserved := range reservedSubjects {
		if subject == reserved || strings.HasPrefix(subject, reserved+".") {
			return Misconfigured(fmt.Errorf("subject %s is under %s, one of Orca's own event subjects", subject, reserved))
		}
	}
	if err := n.deps.Bus.Republish(subject, r.Delivery.Event); err != nil {
		return fmt.Errorf("republish to %s: %w", subject, err)
	}
	return nil
}
