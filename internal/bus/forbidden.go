package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// The event of a start that a Task's concurrencyPolicy Forbid skipped.
const (
	TypeTaskForbidden    = "cloud.sirocco.orca.task.forbidden"
	SubjectTaskForbidden = "orca.task.forbidden"
)

// ForbiddenStart is the data of a forbidden event: an event would have started
// the Task, but the Task's concurrencyPolicy is Forbid and as many of its Pods
// ran as its parallelism allows, so the Pod was not created.
type ForbiddenStart struct {
	Task      string `json:"task"`
	Namespace string `json:"namespace"`
	TaskUID   string `json:"taskUID,omitempty"`
	// Pod is the Pod the start would have created.
	Pod       string `json:"pod"`
	Run       string `json:"run"`
	Initiator string `json:"initiator"`
	// TriggerSource and TriggerID identify the event that would have started it.
	TriggerSource string `json:"triggerSource"`
	TriggerID     string `json:"triggerID"`
	// Parallelism is the number of slots, and Running the Pods that held them.
	Parallelism int      `json:"parallelism"`
	Running     []string `json:"running"`
	// Time is when the start was skipped.
	Time time.Time `json:"time"`
}

// ForbiddenSubject returns the subject of a forbidden event.
func ForbiddenSubject(namespace, task string) string {
	return SubjectTaskForbidden + "." + namespace + "." + task
}

// Event returns the forbidden start as a CloudEvent from source; its id is the
// Pod's name, which the trigger and the Task determine, so that a redelivered
// trigger reports the same event.
func (f ForbiddenStart) Event(source string) (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	if err := checkValues([2]string{"id", f.Pod}, [2]string{"source", source}, [2]string{"subject", f.Task},
		[2]string{ExtensionRun, f.Run}, [2]string{"namespace", f.Namespace}); err != nil {
		return e, err
	}
	e.SetID(f.Pod)
	e.SetSource(source)
	e.SetType(TypeTaskForbidden)
	e.SetSubject(f.Task)
	e.SetTime(f.Time)
	e.SetExtension(ExtensionRun, f.Run)
	if err := e.SetData(cloudevents.ApplicationJSON, f); err != nil {
		return e, fmt.Errorf("set forbidden event data: %w", err)
	}
	return e, validate(e, source)
}

// PublishForbidden publishes a forbidden event from source and waits until the
// stream stored it.
func (b *Bus) PublishForbidden(ctx context.Context, source string, f ForbiddenStart) error {
	e, err := f.Event(source)
	if err != nil {
		return fmt.Errorf("forbidden event %s/%s: %w", f.Namespace, f.Task, err)
	}
	_, err = b.publish(ctx, ForbiddenSubject(f.Namespace, f.Task), e)
	return err
}

func parseForbidden(subject string, e cloudevents.Event) (*ForbiddenStart, error) {
	ns, task, ok := splitSubject(subject, SubjectTaskForbidden)
	if !ok {
		return nil, fmt.Errorf("type %s on subject %q: want %s.<namespace>.<task>", e.Type(), subject, SubjectTaskForbidden)
	}
	var f ForbiddenStart
	if err := json.Unmarshal(e.Data(), &f); err != nil {
		return nil, fmt.Errorf("forbidden event data is not JSON: %w", err)
	}
	if f.Task != task || f.Namespace != ns {
		return nil, fmt.Errorf("forbidden event data names %s/%s but was published on %q", f.Namespace, f.Task, subject)
	}
	return &f, nil
}
