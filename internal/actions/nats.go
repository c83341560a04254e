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
	if !subjectAllowed(n.deps.NATSSubjects, r.Action.Namespace, subject) {
		return Misconfigured(fmt.Errorf("subject %s is not one the actions service may publish to in namespace %s (%s)",
			subject, r.Action.Namespace, strings.Join(n.deps.NATSSubjects, ", ")))
	}
	if err := n.deps.Bus.Republish(subject, r.Delivery.Event); err != nil {
		return fmt.Errorf("republish to %s: %w", subject, err)
	}
	return nil
}

// subjectAllowed reports whether subject matches one of the patterns, NATS
// wildcards included, with {namespace} replaced by namespace; no pattern allows
// every subject.
func subjectAllowed(patterns []string, namespace, subject string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if subjectMatches(strings.ReplaceAll(p, "{namespace}", namespace), subject) {
			return true
		}
	}
	return false
}

// subjectMatches matches a subject against a NATS pattern: * is one token, > the
// rest (at least one token).
func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		switch {
		case p == ">":
			return len(st) > i
		case i >= len(st):
			return false
		case p != "*" && p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}
