package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// joinCase is case 9: diamonds (a -> b, a -> c, b AND c -> d). In each run the
// bench ends a, and times a's end to the first of b and c seen: a plain hop. It
// ends b, then after hopGap c, and times c's end to d's Pod seen: the join, whose
// condition is decided by c's result. The two are measured in the same run.
func joinCase(ctx context.Context, c *cluster, obs *observer, o *orca, runs, warm int, r *report) error {
	const ns = "join"
	if err := c.namespace(ctx, ns); err != nil {
		return err
	}
	tasks := []*orcav1.Task{
		task(ns, "a", []string{"diamond"}, nil),
		task(ns, "b", nil, []string{"a"}),
		task(ns, "c", nil, []string{"a"}),
		task(ns, "d", nil, nil),
	}
	tasks[3].Spec.StartWhen = &orcav1.StartWhen{AllSucceeded: names("b", "c")}
	for _, t := range tasks {
		if err := c.cl.Create(ctx, t); err != nil {
			return err
		}
	}
	time.Sleep(time.Second) // the dispatcher's cache gets the Tasks
	ch := obs.watch(ns)
	of := func(task string) func(*corev1.Pod) bool {
		return func(p *corev1.Pod) bool { return p.Annotations[orcav1.AnnotationTask] == task }
	}
	var hop, join []float64
	for run := range runs + warm {
		if err := o.ignite(ctx, ns, "diamond", fmt.Sprintf("diamond-%d", run)); err != nil {
			return err
		}
		a, err := next(ctx, ch, hopTimeout, of("a"))
		if err != nil {
			return fmt.Errorf("diamond %d, a: %w", run, err)
		}
		t0, err := c.endPod(ctx, a.pod, "a")
		if err != nil {
			return err
		}
		first, err := next(ctx, ch, hopTimeout, nil)
		if err != nil {
			return fmt.Errorf("diamond %d, b or c: %w", run, err)
		}
		second, err := next(ctx, ch, hopTimeout, nil)
		if err != nil {
			return fmt.Errorf("diamond %d, b or c: %w", run, err)
		}
		b, cc := first.pod, second.pod
		if b.Annotations[orcav1.AnnotationTask] != "b" {
			b, cc = cc, b
		}
		hopTook := first.at.Sub(t0)
		if _, err := c.endPod(ctx, b, "b"); err != nil {
			return err
		}
		time.Sleep(hopGap)
		t1, err := c.endPod(ctx, cc, "c")
		if err != nil {
			return err
		}
		d, err := next(ctx, ch, hopTimeout, of("d"))
		if err != nil {
			return fmt.Errorf("diamond %d, d: %w", run, err)
		}
		if run >= warm {
			hop, join = append(hop, ms(hopTook)), append(join, ms(d.at.Sub(t1)))
		}
		if _, err := c.endPod(ctx, d.pod, "d"); err != nil {
			return err
		}
		time.Sleep(hopGap)
	}
	hs := summarize(hop)
	r.add("9 join", "Orca: diamond, c's end -> d's Pod seen (b AND c, b ended 100 ms before)", "ms", summarize(join),
		"a plain hop of the same runs: a's end -> b's or c's Pod seen", &hs, "<= 1.3x", func(x float64) bool { return x <= 1.3 })
	return nil
}
