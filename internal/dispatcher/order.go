package dispatcher

import (
	"context"
	"sync"
	"time"
)

const (
	// orderSettle is how long after its event was pulled a limited start waits
	// before it looks for earlier events in flight: events pulled in one burst
	// reach their handlers in any order (the scheduler runs the last one woken
	// first), and this lets each of them say it is there.
	orderSettle = 20 * time.Millisecond
	// orderWait bounds how long a limited start then waits for the earlier
	// events in flight to be handled.
	orderWait = 2 * time.Second
)

// inFlight keeps the stream sequences of the events this dispatcher is handling,
// so that a limited Task's starts take its slots in the order the stream stored
// their triggers even when several are handled at once (a backlog after a
// restart, a burst): a start waits until the events stored before its own that
// are in flight are handled. The wait is bounded (orderWait): a slow fan-out
// ahead delays no start for long. Events handled by another dispatcher replica
// at the same time are not ordered with these.
type inFlight struct {
	mu      sync.Mutex
	pulled  map[uint64]time.Time
	changed chan struct{} // closed and replaced when an event is done
}

func newInFlight() *inFlight {
	return &inFlight{pulled: map[uint64]time.Time{}, changed: make(chan struct{})}
}

// enter records an event in flight, pulled now, and returns the func that says
// it is done (bus.ConsumerOptions.Received).
func (f *inFlight) enter(seq uint64) func() {
	f.mu.Lock()
	f.pulled[seq] = time.Now()
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.pulled, seq)
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// waitEarlier waits until orderSettle after the event seq was pulled, then until
// no event stored before it is in flight, for at most orderWait in all.
func (f *inFlight) waitEarlier(ctx context.Context, seq uint64) {
	f.mu.Lock()
	pulled, ok := f.pulled[seq]
	f.mu.Unlock()
	if !ok {
		return // not from the consumer (a test, a repair)
	}
	timeout := time.NewTimer(orderWait)
	defer timeout.Stop()
	if settle := time.Until(pulled.Add(orderSettle)); settle > 0 {
		select {
		case <-time.After(settle):
		case <-ctx.Done():
			return
		}
	}
	for {
		f.mu.Lock()
		earlier := false
		for s := range f.pulled {
			if s < seq {
				earlier = true
				break
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if !earlier {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
