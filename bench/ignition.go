package main

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ignitionNS holds the Task that the ignition case fires.
const ignitionNS = "ignition"

func setupIgnition(ctx context.Context, c *cluster) error {
	if err := c.namespace(ctx, ignitionNS); err != nil {
		return err
	}
	return c.cl.Create(ctx, task(ignitionNS, "ign", []string{"ign"}, nil))
}

// ignitionCase is case 2: an ignition published -> its Task's Pod seen, against a
// Job created -> its Pod seen, alternating sample by sample while the
// kube-controller-manager of the phase runs. Each Pod is ended after its sample,
// so that neither side piles up running work.
func ignitionCase(ctx context.Context, c *cluster, obs *observer, o *orca, phase string, n, warm int, r *report, target string) error {
	jobNS := "jobs-" + phase
	if err := c.namespace(ctx, jobNS); err != nil {
		return err
	}
	orcaPods, jobPods := obs.watch(ignitionNS), obs.watch(jobNS)
	var orcaS, jobS []float64
	for i := range n + warm {
		id := fmt.Sprintf("ign-%s-%d", phase, i)
		t0 := time.Now()
		if err := o.ignite(ctx, ignitionNS, "ign", id); err != nil {
			return err
		}
		s, err := next(ctx, orcaPods, hopTimeout, nil)
		if err != nil {
			return fmt.Errorf("ignition %s: %w", id, err)
		}
		if i >= warm {
			orcaS = append(orcaS, ms(s.at.Sub(t0)))
		}
		if _, err := c.endPod(ctx, s.pod, "42"); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)

		name := fmt.Sprintf("j-%d", i)
		t0 = time.Now()
		if _, err := c.cs.BatchV1().Jobs(jobNS).Create(ctx, job(jobNS, name), metav1.CreateOptions{}); err != nil {
			return err
		}
		s, err = next(ctx, jobPods, time.Minute, ofJob(name))
		if err != nil {
			return fmt.Errorf("job %s: %w", name, err)
		}
		if i >= warm {
			jobS = append(jobS, ms(s.at.Sub(t0)))
		}
		if _, err := c.endPod(ctx, s.pod, "42"); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	js := summarize(jobS)
	r.add("2 ignition", "Orca: ignition published -> Pod seen", "ms", summarize(orcaS),
		"Job created -> Pod seen, "+phaseDesc[phase], &js, target, func(x float64) bool { return x < 1 })
	return nil
}

// ofJob matches the Pods of the named Job.
func ofJob(name string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return p.Labels[batchv1.JobNameLabel] == name }
}

// phaseDesc names the kube-controller-manager configuration of a phase.
var phaseDesc = map[string]string{
	"default": "kcm defaults",
	"tuned":   "kcm --kube-api-qps=1000 --kube-api-burst=2000",
}
