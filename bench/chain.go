package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// chainCase is case 5: a chain of length Tasks, each started by the previous one's
// success, every Pod ended by the bench as soon as it is seen. Measured from the
// first Pod's end to the last Pod seen (length-1 hops), against as many hops of
// the floor; runs alternate between the two.
func chainCase(ctx context.Context, c *cluster, obs *observer, o *orca, l *loops, runs, length int, profileDir string, r *report) error {
	const ns = "chain"
	if err := c.namespace(ctx, ns); err != nil {
		return err
	}
	name := func(i int) string { return fmt.Sprintf("c%03d", i) }
	err := createParallel(length, 16, func(i int) error {
		var t *orcav1.Task
		if i == 0 {
			t = task(ns, name(i), []string{"chain"}, nil)
		} else {
			t = task(ns, name(i), nil, []string{name(i - 1)})
		}
		return c.cl.Create(ctx, t)
	})
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	p := &pingpong{c: c, ch: obs.watch(ns)}
	var floor, orca []float64
	floorAPI, orcaAPI := apiCounts{}, apiCounts{}
	floorCPU, orcaCPU := cpuTimes{}, cpuTimes{}
	var cpu0 cpuTimes
	// settle lets the work a run left behind end before the next run: a second
	// after the last Pod, and the API server's request count and the CPU time of
	// the run taken then.
	settle := func(before apiCounts, into apiCounts, used cpuTimes) error {
		time.Sleep(time.Second)
		after, err := c.apiCounts(ctx)
		if err == nil && before != nil {
			into.add(after.since(before))
		}
		for k, v := range cpu().since(cpu0) {
			used[k] += v
		}
		return err
	}
	for run := range runs + 1 { // the first run warms up
		before, err := c.apiCounts(ctx)
		if err != nil {
			return err
		}
		cpu0 = cpu()
		// The first measured run profiles the API server (-profile-dir).
		prof := func(side string, seconds int) func() error {
			if run != 1 || profileDir == "" {
				return func() error { return nil }
			}
			return c.profileAPIServer(ctx, filepath.Join(profileDir, "apiserver-chain-"+side+".pprof"), seconds)
		}
		wait := prof("floor", 1)
		fd, err := l.floor.chain(ctx, length-1)
		if err != nil {
			return err
		}
		if err := wait(); err != nil {
			return err
		}
		if err := settle(before, floorAPI, floorCPU); err != nil {
			return err
		}
		if before, err = c.apiCounts(ctx); err != nil {
			return err
		}
		cpu0 = cpu()
		wait = prof("orca", 4)
		if err := o.ignite(ctx, ns, "chain", fmt.Sprintf("chain-%d", run)); err != nil {
			return err
		}
		s, err := next(ctx, p.ch, hopTimeout, nil)
		if err != nil {
			return fmt.Errorf("first pod of the chain: %w", err)
		}
		p.cur = s.pod
		od, err := p.chain(ctx, length-1)
		if err != nil {
			return err
		}
		if err := obs.settled(ctx, ns, time.Minute); err != nil {
			return err
		}
		if err := o.statusIdle(ctx, time.Minute); err != nil {
			return err
		}
		if err := wait(); err != nil {
			return err
		}
		if err := settle(before, orcaAPI, orcaCPU); err != nil {
			return err
		}
		if run > 0 {
			floor, orca = append(floor, ms(fd)), append(orca, ms(od))
		}
		fmt.Fprintf(stderr, "  chain run %d: floor %v, orca %v\n", run, fd.Round(time.Millisecond), od.Round(time.Millisecond))
	}
	r.note("case 5, API requests per Pod of the floor's chain: %s", floorAPI.per(float64(length-1)*float64(runs+1)))
	r.note("case 5, API requests per Pod of Orca's chain: %s", orcaAPI.per(float64(length)*float64(runs+1)))
	r.note("case 5, CPU ms per Pod of the floor's chain (with the second after it): %s", floorCPU.per(float64(length-1)*float64(runs+1)))
	r.note("case 5, CPU ms per Pod of Orca's chain (with the second after it): %s", orcaCPU.per(float64(length)*float64(runs+1)))
	fs := summarize(floor)
	r.add("5 chain", fmt.Sprintf("Orca: %d-Task chain, first end -> last Pod (%d hops)", length, length-1), "ms",
		summarize(orca), fmt.Sprintf("floor: %d hops", length-1), &fs, "<= 1.3x", func(x float64) bool { return x <= 1.3 })
	return nil
}
