package watcher

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ledger remembers which ended Pods this watcher has published, and which it has
// let go of, until the cache shows their finalizer gone. It lives in memory: after
// a restart every ended Pod that keeps the finalizer is published again (the
// stream's duplicate window stores the copy once) and looked at again by the
// task status controller, which counts a run once thanks to the Task's history.
type ledger struct {
	mu sync.Mutex
	// pods maps a Task (namespace and name) to what was done for its Pods by uid.
	pods map[types.NamespacedName]map[types.UID]entry
}

// entry is what was done for one ended Pod, and the completion published.
type entry struct {
	marks mark
	c     completion
}

// mark is what was done for one ended Pod.
type mark uint8

const (
	// published: its completion event is stored in the stream.
	published mark = 1 << iota
	// released: its finalizer was removed.
	released
)

func newLedger() *ledger {
	return &ledger{pods: map[types.NamespacedName]map[types.UID]entry{}}
}

// set adds m to the marks of the Pod uid of task.
func (l *ledger) set(task types.NamespacedName, uid types.UID, m mark) {
	l.update(task, uid, func(e *entry) { e.marks |= m })
}

// publish marks the Pod uid of task published, as c: the task status controller
// counts the run as published (with its attempt, and whether it is retried),
// whatever the Pod says later (a Pod ended at its run's deadline still runs
// for a moment).
func (l *ledger) publish(task types.NamespacedName, uid types.UID, c completion) {
	l.update(task, uid, func(e *entry) { e.marks |= published; e.c = c })
}

func (l *ledger) update(task types.NamespacedName, uid types.UID, f func(*entry)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pods := l.pods[task]
	if pods == nil {
		pods = map[types.UID]entry{}
		l.pods[task] = pods
	}
	e := pods[uid]
	f(&e)
	pods[uid] = e
}

// has says whether the Pod uid of task has the mark m.
func (l *ledger) has(task types.NamespacedName, uid types.UID, m mark) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pods[task][uid].marks&m != 0
}

// completionOf returns the completion published for the Pod uid of task, if any.
func (l *ledger) completionOf(task types.NamespacedName, uid types.UID) (completion, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.pods[task][uid]
	return e.c, e.marks&published != 0
}

// keep forgets the Pods of task whose uid is not in holding: the Pods that
// the cache shows without the finalizer, or no more.
func (l *ledger) keep(task types.NamespacedName, holding map[types.UID]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pods := l.pods[task]
	for uid := range pods {
		if !holding[uid] {
			delete(pods, uid)
		}
	}
	if len(pods) == 0 {
		delete(l.pods, task)
	}
}
