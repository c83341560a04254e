package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// The scheduler's share of the workload: an Ignitor ticks every second, with
// catchUp All, into a Task of its own, from the start of the faults until they
// are over, when the suite suspends it. Every scheduled time in between must
// fire once, late perhaps (while the scheduler is down, or has no leader), but
// neither skipped nor twice, and start one Pod.
const (
	tickIgnitor = "tick"
	tickTask    = "ticked"
	tickData    = "tick"
)

const assertTicks = "every scheduled time of the Ignitor fired once and started one Pod"

// applyTicks creates the ticking Ignitor and its Task.
func applyTicks(ctx context.Context, c client.Client, namespace string) error {
	objs := []client.Object{&orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: tickTask},
		Spec: orcav1.TaskSpec{StartOnIgnition: []orcav1.ObjectName{tickIgnitor}, TaskHistory: keepEveryRun,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"true"}}},
			}}},
	}, &orcav1.Ignitor{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: tickIgnitor},
		// 100 missed times cover a takeover, an API server restart and a
		// kill of the leader's successor before it fired.
		Spec: orcav1.IgnitorSpec{Scheduled: "@every 1s", Data: tickData, CatchUp: orcav1.CatchUpAll, MaxCatchUpRuns: 100},
	}}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// suspendTicks stops the ticks, retrying while the API server is away.
func suspendTicks(ctx context.Context, c client.Client, namespace string) error {
	return eventually(ctx, time.Minute, func(ctx context.Context) error {
		var ign orcav1.Ignitor
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: tickIgnitor}, &ign); err != nil {
			return err
		}
		patch := client.MergeFrom(ign.DeepCopy())
		ign.Spec.Suspend = true
		return c.Patch(ctx, &ign, patch)
	})
}

// isTick reports whether the Pod is one of the ticking Task's.
func isTick(p *corev1.Pod) bool { return p.Annotations[orcav1.AnnotationTask] == tickTask }

// tick is one ignition of the Ignitor in the stream.
type tick struct {
	id        string
	scheduled time.Time // from the id: <uid>-<unix seconds>
	stored    time.Time
}

// readTicks returns the Ignitor's ignitions in the stream, oldest first.
func readTicks(ctx context.Context, js jetstream.JetStream, namespace string) ([]tick, error) {
	var ticks []tick
	var bad []string
	err := readStream(ctx, js, bus.IgnitionSubject(namespace, tickIgnitor), func(msg jetstream.Msg) {
		id := msg.Headers().Get("ce-id")
		i := strings.LastIndexByte(id, '-')
		sec, err := strconv.ParseInt(id[i+1:], 10, 64)
		if i < 0 || err != nil {
			bad = append(bad, id)
			return
		}
		t := tick{id: id, scheduled: time.Unix(sec, 0)}
		if md, err := msg.Metadata(); err == nil {
			t.stored = md.Timestamp
		}
		ticks = append(ticks, t)
	})
	if err == nil && len(bad) > 0 {
		err = fmt.Errorf("ignitions of %s with ids that name no time: %v", tickIgnitor, bad)
	}
	return ticks, err
}

// checkTicks checks the ticks in the stream against the Ignitor's status and the
// ticking Task's Pods, and records how late the latest tick fired.
func (o *outcome) checkTicks(ticks []tick, ign *orcav1.Ignitor, pods []*corev1.Pod) {
	byID := map[string]int{}
	var times []time.Time
	for _, t := range ticks {
		byID[t.id]++
		if byID[t.id] == 2 {
			o.fail(assertTicks, "the time %s (%s) is stored twice", t.scheduled.UTC().Format(time.TimeOnly), t.id)
		}
		if byID[t.id] == 1 {
			times = append(times, t.scheduled)
		}
		o.tickLate = max(o.tickLate, t.stored.Sub(t.scheduled))
	}
	o.ticks = len(byID)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	switch {
	case len(times) == 0:
		o.fail(assertTicks, "the Ignitor never fired")
		return
	case times[0].Sub(ign.CreationTimestamp.Time) > time.Second:
		o.fail(assertTicks, "the first time fired is %s, the Ignitor was created at %s",
			times[0].UTC().Format(time.TimeOnly), ign.CreationTimestamp.UTC().Format(time.TimeOnly))
	case ign.Status.LastFired == nil || !ign.Status.LastFired.Equal(&metav1.Time{Time: times[len(times)-1]}):
		o.fail(assertTicks, "the last time in the stream is %s, the Ignitor's lastFired %v",
			times[len(times)-1].UTC().Format(time.TimeOnly), ign.Status.LastFired)
	}
	if ign.Status.LastSkip != nil {
		o.fail(assertTicks, "times were skipped: %+v", *ign.Status.LastSkip)
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap != time.Second {
			o.fail(assertTicks, "no time fired between %s and %s", times[i-1].UTC().Format(time.TimeOnly), times[i].UTC().Format(time.TimeOnly))
		}
	}
	started := map[string][]string{}
	for _, p := range pods {
		id := p.Annotations[orcav1.AnnotationEventID]
		started[id] = append(started[id], p.Name)
		if got := envValue(p, orcav1.EnvData); got != tickData {
			o.fail(assertData, "Pod %s of %s got ORCA_DATA %q, want %q", p.Name, tickTask, got, tickData)
		}
	}
	for id := range byID {
		switch n := len(started[id]); {
		case n == 0:
			o.fail(assertTicks, "tick %s started no Pod", id)
		case n > 1:
			o.duplicatePods += n - 1
			o.fail(assertTicks, "tick %s started %d Pods: %s", id, n, strings.Join(started[id], ", "))
		}
		delete(started, id)
	}
	for id, names := range started {
		o.duplicatePods += len(names)
		o.fail(assertTicks, "Pods %s of %s were started by %q, which is not in the stream", strings.Join(names, ", "), tickTask, id)
	}
}
