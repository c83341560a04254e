package actions

import (
	"context"
	"fmt"
	"sync"
)

// lanes give each namespace a share of the service: at most running events of a
// namespace have their Actions run at once, and at most queued more wait for a
// turn. An event beyond that is handed back to the stream (errNamespaceBusy) and
// comes again after a backoff, so that one namespace's backlog, however long or
// slow, never holds the slots that other namespaces' events need.
type lanes struct {
	running, queued int

	mu sync.Mutex
	ns map[string]*lane
}

// lane is one namespace's share: turns holds a token per running event.
type lane struct {
	turns chan struct{}
	held  int // running or waiting
}

func newLanes(running, queued int) *lanes {
	return &lanes{running: running, queued: queued, ns: map[string]*lane{}}
}

// namespaceBusyError hands an event back: its namespace has used its share.
type namespaceBusyError struct {
	namespace string
	held      int
}

func (e *namespaceBusyError) Error() string {
	return fmt.Sprintf("namespace %s already has %d task events in the actions service: this one waits in the stream", e.namespace, e.held)
}

// acquire waits for a turn of namespace ns and returns the function that ends it.
// It fails at once with a *namespaceBusyError when the namespace has used its
// share, and with ctx's error when ctx ends first.
func (l *lanes) acquire(ctx context.Context, ns string) (func(), error) {
	l.mu.Lock()
	ln := l.ns[ns]
	if ln == nil {
		ln = &lane{turns: make(chan struct{}, l.running)}
		l.ns[ns] = ln
	}
	if ln.held >= l.running+l.queued {
		held := ln.held
		l.mu.Unlock()
		return nil, &namespaceBusyError{namespace: ns, held: held}
	}
	ln.held++
	l.mu.Unlock()

	leave := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if ln.held--; ln.held == 0 {
			delete(l.ns, ns)
		}
	}
	select {
	case ln.turns <- struct{}{}:
		return func() { <-ln.turns; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
