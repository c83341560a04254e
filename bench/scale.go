package main

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// scaleCase is case 6: Tasks and Ignitors are added until the cluster holds
// nTasks Tasks and nIgnitors more Ignitors; once the services have caught up, it
// reads the dispatcher process's resident memory and measures the hop again.
// hop10 is case 1's hop, measured with 10 Tasks in the cluster.
func scaleCase(ctx context.Context, c *cluster, o *orca, l *loops, nTasks, nIgnitors, n, warm int, hop10 stat, r *report) error {
	const ns = "scale"
	if err := c.namespace(ctx, ns); err != nil {
		return err
	}
	var all orcav1.TaskList
	if err := c.cl.List(ctx, &all); err != nil {
		return err
	}
	rss0, _, proc := o.dispatcherMemory()
	heap0 := o.dispatcherHeap()
	add := max(nTasks-len(all.Items), 0)
	fmt.Fprintf(stderr, "  %d Tasks in the cluster, dispatcher VmRSS %.0f MiB: adding %d Tasks and %d Ignitors\n",
		len(all.Items), rss0, add, nIgnitors)
	start := time.Now()
	ignName := func(i int) string { return fmt.Sprintf("ig-%04d", i%nIgnitors) }
	err := createParallel(add, 32, func(i int) error {
		t := task(ns, fmt.Sprintf("s%05d", i), []string{ignName(i)}, []string{fmt.Sprintf("s%05d", max(i-1, 0))})
		t.Spec.Description = "a Task that waits: part of the scale case"
		return c.cl.Create(ctx, t)
	})
	if err != nil {
		return err
	}
	err = createParallel(nIgnitors, 32, func(i int) error {
		scheduled := "0 0 1 1 *"
		if i%2 == 1 {
			scheduled = "2099-01-01T00:00:00Z"
		}
		return c.cl.Create(ctx, ignitor(ns, ignName(i), scheduled))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "  created in %v; waiting for the watcher and the scheduler to catch up\n", time.Since(start).Round(time.Second))
	if err := settle(ctx, c, ns, add, nIgnitors); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "  settled after %v\n", time.Since(start).Round(time.Second))
	time.Sleep(5 * time.Second)
	rss, hwm, _ := o.dispatcherMemory()
	heap := o.dispatcherHeap()

	l.floor.trace, l.orca.trace = &breakdown{}, &breakdown{}
	floor, orca, err := l.hops(ctx, n, warm, hopGap)
	if err != nil {
		return err
	}
	r.note("case 6, where the floor's hop goes: %v", l.floor.trace)
	r.note("case 6, where Orca's hop goes: %v", l.orca.trace)
	total := len(all.Items) + add
	h := summarize(orca)
	r.add("6 scale", fmt.Sprintf("Orca: hop at %d Tasks, %d Ignitors", total, nIgnitors), "ms", h,
		"Orca: hop at 10 Tasks (case 1)", &hop10, "<= 1.2x", func(x float64) bool { return x <= 1.2 })
	fs := summarize(floor)
	r.add("6 scale", fmt.Sprintf("Orca: hop at %d Tasks", total), "ms", h, "floor, measured alongside", &fs, "", nil)
	if !proc {
		r.note("dispatcher memory not measured: the dispatcher ran in the bench's process (-services=inproc)")
		return nil
	}
	r.addValue("6 scale", fmt.Sprintf("dispatcher VmRSS at %d Tasks (peak %.0f, Go heap in use %.0f)", total, hwm, heap), "MiB",
		stat{N: 1, P50: round(rss), P99: round(rss)}, "< 300 MiB", rss < 300)
	r.addValue("6 scale", fmt.Sprintf("dispatcher VmRSS before, at %d Tasks (Go heap in use %.0f)", len(all.Items), heap0), "MiB",
		stat{N: 1, P50: round(rss0), P99: round(rss0)}, "", true)
	r.Rows[len(r.Rows)-1].Met = nil
	return nil
}

// settle waits until the watcher has written the status of the tasks new Tasks
// and the scheduler that of the ignitors new Ignitors in ns.
func settle(ctx context.Context, c *cluster, ns string, tasks, ignitors int) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var tl orcav1.TaskList
		var il orcav1.IgnitorList
		if err := c.cl.List(ctx, &tl, client.InNamespace(ns)); err != nil {
			return err
		}
		if err := c.cl.List(ctx, &il, client.InNamespace(ns)); err != nil {
			return err
		}
		doneT, doneI := 0, 0
		for i := range tl.Items {
			if tl.Items[i].Status.State != "" {
				doneT++
			}
		}
		for i := range il.Items {
			if il.Items[i].Status.ObservedGeneration > 0 {
				doneI++
			}
		}
		if doneT >= tasks && doneI >= ignitors {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scale: %d of %d Task statuses, %d of %d Ignitor statuses written", doneT, tasks, doneI, ignitors)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}
