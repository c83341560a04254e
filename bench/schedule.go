package main

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// scheduleCase is case 3: an Ignitor's scheduled time -> its Task's Pod seen,
// against a CronJob's scheduled time -> its Pod seen. Both run "* * * * *" over the
// same minutes, so samples is also the number of minutes waited. Between the
// minutes, one-shot Ignitors (RFC 3339 times at :15, :30 and :45) add Orca samples
// at no extra cost.
func scheduleCase(ctx context.Context, c *cluster, obs *observer, samples int, r *report) error {
	const orcaNS, cronNS = "schedule", "cronjob"
	for _, ns := range []string{orcaNS, cronNS} {
		if err := c.namespace(ctx, ns); err != nil {
			return err
		}
	}
	orcaPods, cronPods := obs.watch(orcaNS), obs.watch(cronNS)
	now := time.Now()
	end := now.Truncate(time.Minute).Add(time.Duration(samples) * time.Minute)
	onceAt := map[string]time.Time{}
	var onceNames []string
	for m := now.Truncate(time.Minute); m.Before(end); m = m.Add(time.Minute) {
		for _, off := range []time.Duration{15, 30, 45} {
			if at := m.Add(off * time.Second); at.After(now.Add(5 * time.Second)) {
				name := fmt.Sprintf("once-%d", len(onceNames))
				onceAt[name], onceNames = at, append(onceNames, name)
			}
		}
	}
	objs := []*orcav1.Task{task(orcaNS, "cron-t", []string{"cron"}, nil), task(orcaNS, "once-t", onceNames, nil)}
	for _, t := range objs {
		if err := c.cl.Create(ctx, t); err != nil {
			return err
		}
	}
	cronIgn := ignitor(orcaNS, "cron", "* * * * *")
	if err := c.cl.Create(ctx, cronIgn); err != nil {
		return err
	}
	for _, name := range onceNames {
		if err := c.cl.Create(ctx, ignitor(orcaNS, name, onceAt[name].UTC().Format(time.RFC3339))); err != nil {
			return err
		}
	}
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "cron", Namespace: cronNS},
		Spec: batchv1.CronJobSpec{
			Schedule:    "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: job(cronNS, "").Spec},
		},
	}
	if _, err := c.cs.BatchV1().CronJobs(cronNS).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "  waiting for %d cron minutes (until about %s) and %d one-shot Ignitors\n",
		samples, end.Add(time.Second).Format(time.TimeOnly), len(onceNames))

	var orcaCron, orcaOnce, cron []float64
	deadline := time.After(time.Until(end) + time.Minute)
	for len(orcaCron) < samples || len(cron) < samples || len(orcaOnce) < len(onceNames) {
		select {
		case s := <-orcaPods:
			initiator := s.pod.Annotations[orcav1.AnnotationInitiator]
			if at, ok := onceAt[initiator]; ok {
				orcaOnce = append(orcaOnce, ms(s.at.Sub(at)))
			} else {
				orcaCron = append(orcaCron, ms(s.at.Sub(s.at.Truncate(time.Minute))))
			}
			_, _ = c.endPod(ctx, s.pod, "42")
		case s := <-cronPods:
			cron = append(cron, ms(s.at.Sub(s.at.Truncate(time.Minute))))
			_, _ = c.endPod(ctx, s.pod, "42")
		case <-deadline:
			return fmt.Errorf("schedule: got %d Ignitor cron, %d one-shot and %d CronJob samples", len(orcaCron), len(orcaOnce), len(cron))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_ = c.cl.Delete(ctx, cronIgn)
	_ = c.cs.BatchV1().CronJobs(cronNS).Delete(ctx, "cron", metav1.DeleteOptions{})

	cs := summarize(cron)
	fast := func(x float64) bool { return x <= 0.05 }
	r.add("3 schedule", "Orca: Ignitor cron time -> Pod seen", "ms", summarize(orcaCron),
		"CronJob time -> Pod seen, kcm defaults", &cs, "<= 0.05x", fast)
	r.add("3 schedule", "Orca: Ignitor RFC 3339 time -> Pod seen", "ms", summarize(orcaOnce),
		"CronJob time -> Pod seen, kcm defaults", &cs, "<= 0.05x", fast)
	return nil
}

func ignitor(ns, name, scheduled string) *orcav1.Ignitor {
	return &orcav1.Ignitor{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       orcav1.IgnitorSpec{Scheduled: scheduled, Data: "tick"},
	}
}
