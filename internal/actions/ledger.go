package actions

import (
	"context"
	"fmt"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// LedgerName is the ledger, in the bus's state bucket, where the service records
// each (Action, event) it ran: an event that comes again (replayed from the dead
// letters, or from a consumer created again) does not run an Action twice. An
// entry lives as long as the stream keeps events.
const LedgerName = "actions"

// ledgerKey returns the parts of an Action's entry for an event: the Action and
// the event's identity, its source and id.
func ledgerKey(namespace, action string, d *bus.Delivery) []string {
	return []string{namespace, action, d.Event.Source(), d.Event.ID()}
}

// notRunYet returns the names whose Action has not run for the event yet. When
// the ledger cannot be read the event fails, and comes back.
func (s *service) notRunYet(ctx context.Context, task *orcav1.Task, names []orcav1.ObjectName, d *bus.Delivery) ([]orcav1.ObjectName, error) {
	var out []orcav1.ObjectName
	for _, name := range names {
		done, err := s.ledger.Done(ctx, ledgerKey(task.Namespace, string(name), d)...)
		if err != nil {
			return nil, fmt.Errorf("actions of task %s/%s: %w", task.Namespace, task.Name, err)
		}
		if done {
			metrics.duplicates.Inc()
			s.log.Info("action already ran for this event, not run again", "namespace", task.Namespace,
				"action", name, "task", task.Name, "id", d.Event.ID(), "source", d.Event.Source())
			continue
		}
		out = append(out, name)
	}
	return out, nil
}

// recordRun records that the Action ran for the event. A failure is logged: at
// worst, the Action runs again should the event come again.
func (s *service) recordRun(ctx context.Context, task *orcav1.Task, name string, d *bus.Delivery) {
	if err := s.ledger.Record(ctx, ledgerKey(task.Namespace, name, d)...); err != nil {
		s.log.Warn("record action run", "namespace", task.Namespace, "action", name, "id", d.Event.ID(), "err", err)
	}
}
