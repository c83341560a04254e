package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/watcher"
)

// hopTimeout bounds the wait for one Pod.
const hopTimeout = 30 * time.Second

// hopGap is the pause after each hop: long enough for the work a hop leaves
// behind (Orca's status write and finalizer patch, which the watcher makes up to
// its status interval after the hop) to end before the other side's hop starts.
const hopGap = watcher.DefaultStatusInterval + 100*time.Millisecond

// names converts strings to Orca's object names.
func names(s ...string) []orcav1.ObjectName {
	out := make([]orcav1.ObjectName, len(s))
	for i, n := range s {
		out[i] = orcav1.ObjectName(n)
	}
	return out
}

func task(ns, name string, onIgnition, onSuccess []string) *orcav1.Task {
	return &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: orcav1.TaskSpec{
			StartOnIgnition: names(onIgnition...),
			StartOnSuccess:  names(onSuccess...),
			Template:        podTemplate(nil),
		},
	}
}

// createParallel runs create(i) for i in [0, n) from workers goroutines and
// returns the first error.
func createParallel(n, workers int, create func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := create(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// pingpong is a loop of two steps that start each other (Orca: two Tasks, each
// started by the other's success; floor: the reactor). cur is the Pod that runs.
type pingpong struct {
	c   *cluster
	ch  <-chan seen
	cur *corev1.Pod
	// trace, when set, collects where the time of each hop went.
	trace *breakdown
}

// hop ends the running Pod and returns the time until the Pod it triggers is seen.
func (p *pingpong) hop(ctx context.Context) (time.Duration, error) {
	t0, err := p.c.endPod(ctx, p.cur, "42")
	if err != nil {
		return 0, err
	}
	s, err := next(ctx, p.ch, hopTimeout, nil)
	if err != nil {
		return 0, fmt.Errorf("hop in %s after %s ended: %w", p.cur.Namespace, p.cur.Name, err)
	}
	if p.trace != nil {
		p.c.marks.postAfter(p.cur.UID, t0)
		p.trace.add(p.c.marks.get(p.cur.UID), t0, s.at)
	}
	p.cur = s.pod
	return s.at.Sub(t0), nil
}

// chain ends each Pod as soon as it is seen, for hops hops, and returns the time
// from the first end to the last Pod seen.
func (p *pingpong) chain(ctx context.Context, hops int) (time.Duration, error) {
	t0, err := p.c.endPod(ctx, p.cur, "42")
	if err != nil {
		return 0, err
	}
	var last time.Time
	for i := range hops {
		s, err := next(ctx, p.ch, hopTimeout, nil)
		if err != nil {
			return 0, fmt.Errorf("chain in %s, hop %d: %w", p.cur.Namespace, i+1, err)
		}
		p.cur, last = s.pod, s.at
		if i < hops-1 {
			if _, err := p.c.endPod(ctx, p.cur, "42"); err != nil {
				return 0, err
			}
		}
	}
	return last.Sub(t0), nil
}

// loops holds the floor's and Orca's ping-pongs, shared by the hop, chain and
// scale cases.
type loops struct {
	floor, orca *pingpong
}

// setupLoops creates the floor's namespace (reactor and seed Pod) and Orca's hop
// namespace with 10 Tasks: the two of the loop and 8 that nothing starts.
func setupLoops(ctx context.Context, c *cluster, obs *observer, o *orca, floorShape bool) (*loops, error) {
	const floorNS, hopNS = "floor", "hop"
	for _, ns := range []string{floorNS, hopNS} {
		if err := c.namespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	if err := startReactor(ctx, c.cfg, floorNS, pingpongReactor(floorNS, floorShape)); err != nil {
		return nil, err
	}
	l := &loops{
		floor: &pingpong{c: c, ch: obs.watch(floorNS)},
		orca:  &pingpong{c: c, ch: obs.watch(hopNS)},
	}
	if err := c.seedFloor(ctx, floorNS); err != nil {
		return nil, err
	}
	tasks := []*orcav1.Task{
		task(hopNS, "hop-a", []string{"hop"}, []string{"hop-b"}),
		task(hopNS, "hop-b", nil, []string{"hop-a"}),
	}
	for i := range 8 {
		tasks = append(tasks, task(hopNS, fmt.Sprintf("idle-%d", i), []string{fmt.Sprintf("never-%d", i)}, nil))
	}
	for _, t := range tasks {
		if err := c.cl.Create(ctx, t); err != nil {
			return nil, err
		}
	}
	time.Sleep(time.Second) // the dispatcher's cache gets the Tasks
	if err := o.ignite(ctx, hopNS, "hop", "hop-start"); err != nil {
		return nil, err
	}
	for _, p := range []*pingpong{l.floor, l.orca} {
		s, err := next(ctx, p.ch, time.Minute, nil)
		if err != nil {
			return nil, fmt.Errorf("first pod of the loop: %w", err)
		}
		p.cur = s.pod
	}
	return l, nil
}

// hops measures n hops of the floor and of Orca, alternating, after warm hops
// that are not counted.
func (l *loops) hops(ctx context.Context, n, warm int, gap time.Duration) (floor, orca []float64, err error) {
	for i := range n + warm {
		for _, side := range []struct {
			p   *pingpong
			out *[]float64
		}{{l.floor, &floor}, {l.orca, &orca}} {
			trace := side.p.trace
			if i < warm {
				side.p.trace = nil // warm hops are not in the breakdown either
			}
			d, err := side.p.hop(ctx)
			side.p.trace = trace
			if err != nil {
				return nil, nil, err
			}
			if i >= warm {
				*side.out = append(*side.out, ms(d))
			}
			time.Sleep(gap)
		}
	}
	return floor, orca, nil
}
