package actions

import (
	"math/rand/v2"
	"sync"
	"time"
)

// lanes give each namespace a share of the service: at most running events of a
// namespace have their Actions run at once. An event beyond that is handed back
// to the stream (bus.Later, which is no failure) and comes again after a second
// or two, so that one namespace's backlog, however long or slow, holds no more
// than its share of the service's workers and never the ones that other
// namespaces' events need.
type lanes struct {
	running int

	mu   sync.Mutex
	held map[string]int // running events by namespace
}

func newLanes(running int) *lanes {
	return &lanes{running: running, held: map[string]int{}}
}

// enter takes a turn of namespace ns and returns the function that ends it; ok
// is false when the namespace has used its share.
func (l *lanes) enter(ns string) (leave func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[ns] >= l.running {
		return nil, false
	}
	l.held[ns]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.held[ns]--; l.held[ns] == 0 {
			delete(l.held, ns)
		}
	}, true
}

// busyWait is how long an event of a namespace that has used its share waits in
// the stream before it comes again: one to two seconds, spread so that the
// events handed back together do not all come back at once.
func busyWait() time.Duration { return time.Second + rand.N(time.Second) }
