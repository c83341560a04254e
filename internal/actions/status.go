package actions

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// ConditionReady says whether the last run of an Action succeeded.
const ConditionReady = "Ready"

// Reasons of the Events on Tasks and of the Ready condition.
const (
	ReasonSucceeded     = "ActionSucceeded"
	ReasonFailed        = "ActionFailed"
	ReasonMisconfigured = "ActionMisconfigured"
	ReasonNotFound      = "ActionNotFound"

	// eventAction is the action of the Events, in the events.k8s.io sense.
	eventAction = "RunAction"
	// noteLimit is the longest note an Event may carry.
	noteLimit = 1024
	// errorLimit bounds lastError and the condition's message.
	errorLimit = 2048
)

// statusBackoff retries status writes that meet a conflict: the runs of several
// events may finish at once for the same Action.
var statusBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: 2 * time.Second}

// missing reports an Action named by the Task that does not exist.
func (s *service) missing(task *orcav1.Task, name string, d *bus.Delivery) {
	metrics.runs.WithLabelValues("none", "missing").Inc()
	s.log.Warn("action not found", "namespace", task.Namespace, "action", name, "task", task.Name,
		"id", d.Event.ID(), "type", d.Event.Type())
	related := &orcav1.Action{ObjectMeta: metav1.ObjectMeta{Namespace: task.Namespace, Name: name}}
	s.recorder.Eventf(task, related, corev1.EventTypeWarning, ReasonNotFound, eventAction, "%s",
		truncate(fmt.Sprintf("action %s not found in namespace %s (task event %s)", name, task.Namespace, d.Event.ID()), noteLimit))
}

// finish reports the outcome of a run: metric, log line, Event on the Task and
// the Action's status.
func (s *service) finish(ctx context.Context, task *orcav1.Task, action *orcav1.Action, plugin string, d *bus.Delivery, runErr error, start time.Time) {
	outcome, reason, eventType := "succeeded", ReasonSucceeded, corev1.EventTypeNormal
	switch {
	case runErr == nil:
	case IsMisconfigured(runErr):
		outcome, reason, eventType = "misconfigured", ReasonMisconfigured, corev1.EventTypeWarning
	default:
		outcome, reason, eventType = "failed", ReasonFailed, corev1.EventTypeWarning
	}
	metrics.runs.WithLabelValues(plugin, outcome).Inc()
	logArgs := []any{"namespace", task.Namespace, "action", action.Name, "plugin", plugin, "task", task.Name,
		"id", d.Event.ID(), "type", d.Event.Type(), "outcome", outcome, "duration", time.Since(start)}
	related := &orcav1.Action{ObjectMeta: metav1.ObjectMeta{Namespace: action.Namespace, Name: action.Name, UID: action.UID}}
	if runErr == nil {
		s.log.Info("action ran", logArgs...)
		s.recorder.Eventf(task, related, eventType, reason, eventAction, "%s",
			truncate(fmt.Sprintf("action %s (%s) ran for task event %s", action.Name, plugin, d.Event.ID()), noteLimit))
	} else {
		s.log.Warn("action failed", append(logArgs, "err", runErr)...)
		s.recorder.Eventf(task, related, eventType, reason, eventAction, "%s",
			truncate(fmt.Sprintf("action %s (%s) for task event %s: %v", action.Name, plugin, d.Event.ID(), runErr), noteLimit))
	}
	if action.UID == "" {
		return // the Action could not be read: no status to write
	}
	if err := s.writeStatus(context.WithoutCancel(ctx), action, reason, runErr, start); err != nil {
		s.log.Error("write action status failed", "namespace", action.Namespace, "action", action.Name, "err", err)
	}
}

// writeStatus records a run in the Action's status, unless a later run was
// recorded already.
func (s *service) writeStatus(ctx context.Context, action *orcav1.Action, reason string, runErr error, start time.Time) error {
	key := client.ObjectKeyFromObject(action)
	err := retry.RetryOnConflict(statusBackoff, func() error {
		var cur orcav1.Action
		if err := s.api.Get(ctx, key, &cur); err != nil {
			return err
		}
		if cur.UID != action.UID {
			return nil // deleted and created again: this run was of the old one
		}
		if last := cur.Status.LastRun; last != nil && last.After(start.Truncate(time.Second)) {
			return nil
		}
		now := metav1.Now()
		cur.Status.LastRun = &metav1.Time{Time: start}
		cond := metav1.Condition{Type: ConditionReady, Reason: reason, ObservedGeneration: cur.Generation}
		if runErr == nil {
			cur.Status.LastSuccess = &now
			cur.Status.LastError = ""
			cond.Status, cond.Message = metav1.ConditionTrue, "the last run succeeded"
		} else {
			cur.Status.LastError = truncate(runErr.Error(), errorLimit)
			cond.Status, cond.Message = metav1.ConditionFalse, cur.Status.LastError
		}
		meta.SetStatusCondition(&cur.Status.Conditions, cond)
		return s.client.Status().Update(ctx, &cur)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of action %s: %w", key, err)
	}
	return nil
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "..."
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
