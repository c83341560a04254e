package bus

import (
	"context"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Events of joins (Tasks with a startWhen condition).
const (
	// TypeTaskSkipped says that a Task did not run in a run: its condition became
	// false there, or timed out with policy Skip. Its data is a TaskResult with
	// the reason (ConditionFalse, ConditionFailed, JoinTimedOut) and, as message,
	// why.
	TypeTaskSkipped    = "cloud.sirocco.orca.task.skipped"
	SubjectTaskSkipped = "orca.task.skipped"

	// TypeJoinTimer is the dispatcher's own timer of a waiting run: the dispatcher
	// that handles it holds it back (Later) until the run's timeout is due.
	TypeJoinTimer    = "cloud.sirocco.orca.join.timer"
	SubjectJoinTimer = "orca.join.timer"
)

// TaskSkipped says that a Task was skipped in a run.
type TaskSkipped struct {
	ID     string
	Source string
	Result TaskResult
}

// SkippedSubject returns the subject of a skipped event.
func SkippedSubject(namespace, task string) string {
	return SubjectTaskSkipped + "." + namespace + "." + task
}

// Event returns the skipped event as a CloudEvent.
func (s TaskSkipped) Event() (cloudevents.Event, error) {
	e, err := TaskEvent{ID: s.ID, Source: s.Source, Result: s.Result}.Event()
	if err != nil {
		return e, err
	}
	e.SetType(TypeTaskSkipped)
	return e, validate(e, s.Source)
}

// PublishTaskSkipped publishes a skipped event and waits until the stream stored
// it; a republish of one the stream holds is a success.
func (b *Bus) PublishTaskSkipped(ctx context.Context, s TaskSkipped) error {
	e, err := s.Event()
	if err != nil {
		return fmt.Errorf("skipped event %s/%s: %w", s.Result.Namespace, s.Result.Task, err)
	}
	_, err = b.publish(ctx, SkippedSubject(s.Result.Namespace, s.Result.Task), e)
	return err
}

// JoinTimer is the timer of a run waiting on a Task's condition.
type JoinTimer struct {
	ID        string    `json:"-"`
	Source    string    `json:"-"`
	Namespace string    `json:"namespace"`
	Task      string    `json:"task"`
	TaskUID   string    `json:"taskUID"`
	Run       string    `json:"run"`
	Due       time.Time `json:"due"`
}

// JoinTimerSubject returns the subject of a join timer.
func JoinTimerSubject(namespace, task string) string {
	return SubjectJoinTimer + "." + namespace + "." + task
}

// Event returns the timer as a CloudEvent.
func (jt JoinTimer) Event() (cloudevents.Event, error) {
	return taskEvent(jt.ID, jt.Source, TypeJoinTimer, jt.Task, jt.Namespace, jt.Run, time.Time{}, jt, "", "")
}

// PublishJoinTimer publishes a join timer and waits until the stream stored it; a
// republish of one the stream holds is a success.
func (b *Bus) PublishJoinTimer(ctx context.Context, jt JoinTimer) error {
	e, err := jt.Event()
	if err != nil {
		return fmt.Errorf("join timer %s/%s: %w", jt.Namespace, jt.Task, err)
	}
	_, err = b.publish(ctx, JoinTimerSubject(jt.Namespace, jt.Task), e)
	return err
}

func parseSkipped(subject string, e cloudevents.Event) (*TaskSkipped, error) {
	r, err := parseResult(subject, SubjectTaskSkipped, e)
	if err != nil {
		return nil, err
	}
	return &TaskSkipped{ID: e.ID(), Source: e.Source(), Result: r}, nil
}

func parseJoinTimer(subject string, e cloudevents.Event) (*JoinTimer, error) {
	var jt JoinTimer
	if err := taskData(subject, SubjectJoinTimer, e, &jt, &jt.Namespace, &jt.Task); err != nil {
		return nil, err
	}
	if jt.Run == "" {
		return nil, fmt.Errorf("join timer data names no run")
	}
	jt.ID, jt.Source = e.ID(), e.Source()
	return &jt, nil
}
