package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// retryAttempts is how many attempts a run of case 8's Task makes.
const retryAttempts = 5

// retryCase is case 8: a Task that retries at once (backoff 0), retryAttempts
// attempts a run, each ended Failed by the bench as soon as it is seen. A retry
// (an attempt's failure -> the next attempt's Pod seen) goes through the watcher's
// retrying event and the dispatcher, as a hop goes through a task event; it is
// measured against Orca's plain hop (case 1's loop), alternating sample by sample.
// The last attempt's failure ends the run, and the next run starts with an
// ignition; neither is measured.
func retryCase(ctx context.Context, c *cluster, obs *observer, o *orca, l *loops, n, warm int, r *report) error {
	const ns = "retry"
	if err := c.namespace(ctx, ns); err != nil {
		return err
	}
	t := task(ns, "flaky", []string{"retry"}, nil)
	t.Spec.Retry = &orcav1.RetryPolicy{Limit: retryAttempts - 1, Backoff: &orcav1.Backoff{Duration: &metav1.Duration{}}}
	if err := c.cl.Create(ctx, t); err != nil {
		return err
	}
	time.Sleep(time.Second) // the dispatcher's cache gets the Task
	p := &pingpong{c: c, ch: obs.watch(ns)}
	runs, attempt := 0, 0
	startRun := func() error {
		runs++
		if err := o.ignite(ctx, ns, "retry", fmt.Sprintf("retry-%d", runs)); err != nil {
			return err
		}
		s, err := next(ctx, p.ch, time.Minute, nil)
		p.cur, attempt = s.pod, 1
		return err
	}
	retry := func() (time.Duration, error) {
		if attempt == retryAttempts {
			if _, err := c.endPodWith(ctx, p.cur, 1, "failed"); err != nil {
				return 0, err
			}
			if err := startRun(); err != nil {
				return 0, fmt.Errorf("run %d of the retried Task: %w", runs, err)
			}
		}
		t0, err := c.endPodWith(ctx, p.cur, 1, "failed")
		if err != nil {
			return 0, err
		}
		s, err := next(ctx, p.ch, hopTimeout, nil)
		if err != nil {
			return 0, fmt.Errorf("attempt %d of run %d after %s failed: %w", attempt+1, runs, p.cur.Name, err)
		}
		p.cur = s.pod
		attempt++
		return s.at.Sub(t0), nil
	}
	if err := startRun(); err != nil {
		return err
	}
	l.orca.trace = nil
	var plain, retried []float64
	for i := range n + warm {
		hop, err := l.orca.hop(ctx)
		if err != nil {
			return err
		}
		time.Sleep(hopGap)
		d, err := retry()
		if err != nil {
			return err
		}
		time.Sleep(hopGap)
		if i >= warm {
			plain, retried = append(plain, ms(hop)), append(retried, ms(d))
		}
	}
	ps := summarize(plain)
	r.add("8 retry", fmt.Sprintf("Orca: attempt failed -> next attempt's Pod seen (backoff 0, %d attempts a run)", retryAttempts), "ms",
		summarize(retried), "Orca's plain hop (case 1's loop), measured alongside", &ps, "<= 1.2x", func(x float64) bool { return x <= 1.2 })
	return nil
}
