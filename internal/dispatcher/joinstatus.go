package dispatcher

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/join"
)

// ConditionStartWhenValid says whether a Task's startWhen condition can be used:
// False with reason InvalidCondition when it does not compile (or names its own
// Task), UnknownTask when it names a Task the namespace does not have (that
// Task's result never comes: the runs wait until their timeout). The dispatcher
// also records a Warning Event when it turns False.
const ConditionStartWhenValid = "StartWhenValid"

// Reasons of ConditionStartWhenValid and of the joins' Events.
const (
	ReasonValid            = "Valid"
	ReasonInvalidCondition = "InvalidCondition"
	ReasonUnknownTask      = "UnknownTask"
	ReasonJoinTimedOut     = "JoinTimedOut"
)

// Timing of the join status.
const (
	// statusDelay gathers the changes of a Task's waiting runs into one status
	// write at most this often.
	statusDelay = time.Second
	// statusResync is how often the status of a Task with waiting runs is
	// refreshed, also for the runs other dispatchers decided.
	statusResync = 30 * time.Second
)

// joinStatus checks the conditions of join Tasks and shows their waiting runs in
// their status (status.join and the StartWhenValid condition).
type joinStatus struct {
	client   client.Client
	recorder recorder.EventRecorder
	store    *bus.JoinStore
	pokes    chan event.GenericEvent

	mu      sync.Mutex
	pending map[types.NamespacedName]bool
}

func setupJoinStatus(mgr manager.Manager, store *bus.JoinStore) (*joinStatus, error) {
	s := &joinStatus{
		client: mgr.GetClient(), recorder: mgr.GetEventRecorder("orca-dispatcher"), store: store,
		pokes: make(chan event.GenericEvent, 1024), pending: map[types.NamespacedName]bool{},
	}
	joinsOrStale := predicate.NewPredicateFuncs(func(o client.Object) bool {
		t := o.(*orcav1.Task)
		return t.Spec.StartWhen != nil || t.Status.Join != nil || meta.FindStatusCondition(t.Status.Conditions, ConditionStartWhenValid) != nil
	})
	err := ctrl.NewControllerManagedBy(mgr).
		Named("orca-join-status").
		// Status writes (the watcher's, at each run) change neither the condition
		// nor the waiting runs, which pokes and the resync follow.
		For(&orcav1.Task{}, builder.WithPredicates(joinsOrStale, predicate.GenerationChangedPredicate{})).
		// A Task applied or deleted may be one that joins name.
		Watches(&orcav1.Task{}, handler.EnqueueRequestsFromMapFunc(s.joinsNaming), builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(event.UpdateEvent) bool { return false },
		})).
		WatchesRawSource(source.Channel(s.pokes, &handler.EnqueueRequestForObject{})).
		Complete(s)
	return s, err
}

// joinsNaming returns the join Tasks of o's namespace whose condition names o.
func (s *joinStatus) joinsNaming(ctx context.Context, o client.Object) []ctrl.Request {
	var tasks orcav1.TaskList
	if err := s.client.List(ctx, &tasks, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexStartWhen: o.GetName()}); err != nil {
		return nil
	}
	out := make([]ctrl.Request, len(tasks.Items))
	for i := range tasks.Items {
		out[i] = ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&tasks.Items[i])}
	}
	return out
}

// poke asks for the status of task to be refreshed soon; pokes within
// statusDelay make one refresh.
func (s *joinStatus) poke(task *orcav1.Task) {
	key := client.ObjectKeyFromObject(task)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[key] {
		return
	}
	s.pending[key] = true
	obj := &orcav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	time.AfterFunc(statusDelay, func() {
		s.mu.Lock()
		delete(s.pending, key)
		s.mu.Unlock()
		select {
		case s.pokes <- event.GenericEvent{Object: obj}:
		default: // the periodic refresh catches up
		}
	})
}

func (s *joinStatus) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var task orcav1.Task
	if err := s.client.Get(ctx, req.NamespacedName, &task); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var cond *metav1.Condition
	var js *orcav1.JoinStatus
	if task.Spec.StartWhen != nil {
		c, err := s.check(ctx, &task)
		if err != nil {
			return ctrl.Result{}, err
		}
		if js, err = s.waiting(ctx, &task); err != nil {
			return ctrl.Result{}, err
		}
		cond = &c
	}
	if err := s.write(ctx, &task, cond, js); err != nil {
		return ctrl.Result{}, err
	}
	if js != nil && js.Waiting > 0 {
		return ctrl.Result{RequeueAfter: statusResync}, nil
	}
	return ctrl.Result{}, nil
}

// check returns the StartWhenValid condition of task.
func (s *joinStatus) check(ctx context.Context, task *orcav1.Task) (metav1.Condition, error) {
	c := metav1.Condition{Type: ConditionStartWhenValid, ObservedGeneration: task.Generation}
	p, err := program(task)
	if err != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonInvalidCondition, err.Error()
		return c, nil
	}
	var tasks orcav1.TaskList
	if err := s.client.List(ctx, &tasks, client.InNamespace(task.Namespace)); err != nil {
		return c, fmt.Errorf("list tasks of namespace %s: %w", task.Namespace, err)
	}
	var missing []string
	for _, name := range p.Tasks {
		if !slices.ContainsFunc(tasks.Items, func(t orcav1.Task) bool { return t.Name == name }) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonUnknownTask
		c.Message = fmt.Sprintf("the condition names %s: no such Task in namespace %s (its result never comes, so runs wait until their timeout)",
			strings.Join(missing, ", "), task.Namespace)
		return c, nil
	}
	c.Status, c.Reason = metav1.ConditionTrue, ReasonValid
	c.Message = fmt.Sprintf("%s over %s", p.Op, strings.Join(p.Tasks, ", "))
	return c, nil
}

// waiting returns the runs of task waiting on its condition: how many, and the
// oldest. A run decided within the last second may still have its mark: each
// mark is read to tell (up to maxVerified of them, the oldest first).
func (s *joinStatus) waiting(ctx context.Context, task *orcav1.Task) (*orcav1.JoinStatus, error) {
	keys, err := s.store.Marked(ctx, join.WaitPrefix(task))
	if err != nil {
		return nil, fmt.Errorf("list the waiting runs of %s/%s: %w", task.Namespace, task.Name, err)
	}
	type mark struct {
		since time.Time
		key   string
	}
	marks := make([]mark, 0, len(keys))
	for _, k := range keys {
		if since, _, ok := join.ParseWaitKey(k); ok {
			marks = append(marks, mark{since, k})
		}
	}
	slices.SortFunc(marks, func(a, b mark) int { return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.key, b.key)) })
	js := &orcav1.JoinStatus{Waiting: int32(len(marks))}
	for i, m := range marks {
		if i == maxVerified {
			break
		}
		_, live, err := s.store.Get(ctx, m.key)
		if err != nil {
			return nil, err
		}
		if live == 0 {
			js.Waiting--
			continue
		}
		if js.OldestSince == nil {
			_, stateKey, _ := join.ParseWaitKey(m.key)
			raw, _, err := s.store.Get(ctx, stateKey)
			if err != nil {
				return nil, err
			}
			var st join.State
			if json.Unmarshal(raw, &st) == nil {
				js.OldestRun = st.Run
			}
			js.OldestSince = &metav1.Time{Time: m.since}
		}
	}
	return js, nil
}

// maxVerified bounds the marks the status reads at each refresh.
const maxVerified = 1000

// write sets the condition (nil: none) and the join status of task, and records
// a Warning Event when the condition turns False.
func (s *joinStatus) write(ctx context.Context, task *orcav1.Task, cond *metav1.Condition, js *orcav1.JoinStatus) error {
	warn := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur orcav1.Task
		if err := s.client.Get(ctx, client.ObjectKeyFromObject(task), &cur); err != nil {
			return err
		}
		changed := !sameJoin(cur.Status.Join, js)
		cur.Status.Join = js
		was := meta.FindStatusCondition(cur.Status.Conditions, ConditionStartWhenValid)
		warn = cond != nil && cond.Status == metav1.ConditionFalse && (was == nil || was.Status != cond.Status || was.Message != cond.Message)
		if cond != nil {
			changed = meta.SetStatusCondition(&cur.Status.Conditions, *cond) || changed
		} else {
			changed = meta.RemoveStatusCondition(&cur.Status.Conditions, ConditionStartWhenValid) || changed
		}
		if !changed {
			return nil
		}
		return s.client.Status().Update(ctx, &cur)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write the join status of %s/%s: %w", task.Namespace, task.Name, err)
	}
	if warn {
		s.recorder.Eventf(task, nil, corev1.EventTypeWarning, cond.Reason, "CheckCondition", "%s", cond.Message)
	}
	return nil
}

func sameJoin(a, b *orcav1.JoinStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Waiting == b.Waiting && a.OldestRun == b.OldestRun &&
		(a.OldestSince == nil) == (b.OldestSince == nil) && (a.OldestSince == nil || a.OldestSince.Equal(b.OldestSince))
}
