package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// The cleaned Task: the ignition starts it in every run, and the watcher deletes
// each of its Pods once its end is stored (ttlSecondsAfterFinished: 0), while
// the ignitions of the runs are redelivered (Pod creates of fan-3 are refused)
// and replayed by the kills: a Pod deleted must not be made again. Its Pods are
// gone, so the check reads its task events: one Pod per run, ended once.
const cleanedTask = "cleaned"

const assertCleaned = "the Task with ttlSecondsAfterFinished 0 ran once per run, its deleted Pods never made again"

// applyCleaned creates the cleaned Task.
func applyCleaned(ctx context.Context, c client.Client, namespace string) error {
	t := &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: cleanedTask},
		Spec: orcav1.TaskSpec{StartOnIgnition: []orcav1.ObjectName{ignitionName}, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"true"}}},
		}}, TaskHistory: orcav1.TaskHistory{TTLSecondsAfterFinished: ptr.To[int32](0)}},
	}
	if err := c.Create(ctx, t); err != nil {
		return fmt.Errorf("create task %s: %w", t.Name, err)
	}
	return nil
}

// checkCleaned checks, from the stored task events of the cleaned Task, that
// each run ran it in one Pod, once (a Pod made again after its deletion has a
// new uid, so its end is another event id), and counts the Pods deleted.
func (o *outcome) checkCleaned(ctx context.Context, js jetstream.JetStream, pods []corev1.Pod, runs []*run) error {
	type ended struct{ pods, ids []string }
	byRun := map[string]*ended{}
	err := readStream(ctx, js, bus.TaskSubject(true, namespace, cleanedTask), func(msg jetstream.Msg) {
		r, id := msg.Headers().Get("ce-"+bus.ExtensionRun), msg.Headers().Get("ce-id")
		var res bus.TaskResult
		_ = json.Unmarshal(msg.Data(), &res)
		e := byRun[r]
		if e == nil {
			e = &ended{}
			byRun[r] = e
		}
		if !slices.Contains(e.pods, res.Pod) {
			e.pods = append(e.pods, res.Pod)
		}
		if !slices.Contains(e.ids, id) {
			e.ids = append(e.ids, id)
		}
	})
	if err != nil {
		return err
	}
	for _, r := range runs {
		e := byRun[r.id]
		switch {
		case e == nil:
			o.fail(assertCleaned, "run %s: no end of %s was stored", r.id, cleanedTask)
		case len(e.pods) != 1 || len(e.ids) != 1:
			o.fail(assertCleaned, "run %s: %s ran as Pods %s, ended as events %s", r.id, cleanedTask,
				strings.Join(e.pods, ", "), strings.Join(e.ids, ", "))
		}
	}
	o.cleanedDeleted = len(runs)
	for i := range pods {
		if pods[i].Annotations[orcav1.AnnotationTask] == cleanedTask {
			o.cleanedDeleted--
		}
	}
	return nil
}
