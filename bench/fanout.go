package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
)

// fanoutNS holds the Tasks that one ignition starts.
const fanoutNS = "fanout"

// fanWorkers is how many goroutines create the peers' objects: the dispatcher's
// default CreateParallelism.
const fanWorkers = 32

// fanRounds is how many times Orca and the write floor take turns.
const fanRounds = 3

// median returns the result of median rate.
func median(results []fanResult) fanResult {
	s := slices.Clone(results)
	slices.SortFunc(s, func(a, b fanResult) int { return cmp.Compare(a.rate(), b.rate()) })
	return s[len(s)/2]
}

func setupFanout(ctx context.Context, c *cluster, n int) error {
	if err := c.namespace(ctx, fanoutNS); err != nil {
		return err
	}
	return createParallel(n, 16, func(i int) error {
		return c.cl.Create(ctx, task(fanoutNS, fmt.Sprintf("f%04d", i), []string{"fan"}, nil))
	})
}

// fanResult is n Pods seen: the rate from the first call to the last Pod, and the
// latency of each Pod from the first call.
type fanResult struct {
	n       int
	total   time.Duration
	latency []float64
}

func (f fanResult) rate() float64 { return float64(f.n) / f.total.Seconds() }

func (f fanResult) String() string {
	return fmt.Sprintf("%d pods in %v (%.0f pods/s)", f.n, f.total.Round(time.Millisecond), f.rate())
}

// collect waits for n Pods on ch that match and measures them from t0.
func collect(ctx context.Context, ch <-chan seen, n int, t0 time.Time, timeout time.Duration, match func(*corev1.Pod) bool) (fanResult, error) {
	res := fanResult{n: n}
	deadline := time.Now().Add(timeout)
	for len(res.latency) < n {
		s, err := next(ctx, ch, time.Until(deadline), match)
		if err != nil {
			return res, fmt.Errorf("%d of %d pods seen: %w", len(res.latency), n, err)
		}
		res.latency = append(res.latency, ms(s.at.Sub(t0)))
		res.total = s.at.Sub(t0)
	}
	return res, nil
}

// fanOrca publishes one ignition that starts n Tasks.
func fanOrca(ctx context.Context, obs *observer, o *orca, n int, id string) (fanResult, error) {
	ch := obs.watch(fanoutNS)
	t0 := time.Now()
	if err := o.ignite(ctx, fanoutNS, "fan", id); err != nil {
		return fanResult{}, err
	}
	return collect(ctx, ch, n, t0, 5*time.Minute, func(p *corev1.Pod) bool {
		return p.Annotations[orcav1.AnnotationEventID] == id
	})
}

// fanPods is the write floor: n Pods created directly, fanWorkers at once, in
// a namespace of the round's own.
func fanPods(ctx context.Context, c *cluster, obs *observer, n, round int) (fanResult, error) {
	ns := fmt.Sprintf("podfan-%d", round)
	if err := c.namespace(ctx, ns); err != nil {
		return fanResult{}, err
	}
	ch := obs.watch(ns)
	t0 := time.Now()
	err := createParallel(n, fanWorkers, func(i int) error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%04d", i), Namespace: ns}, Spec: podTemplate(nil).Spec}
		_, err := c.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fanResult{}, err
	}
	return collect(ctx, ch, n, t0, time.Minute, nil)
}

// fanJobs creates n Jobs at once, fanWorkers at a time.
func fanJobs(ctx context.Context, c *cluster, obs *observer, n int, phase string) (fanResult, error) {
	ns := "jobfan-" + phase
	if err := c.namespace(ctx, ns); err != nil {
		return fanResult{}, err
	}
	ch := obs.watch(ns)
	t0 := time.Now()
	err := createParallel(n, fanWorkers, func(i int) error {
		_, err := c.cs.BatchV1().Jobs(ns).Create(ctx, job(ns, fmt.Sprintf("j%04d", i)), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fanResult{}, err
	}
	return collect(ctx, ch, n, t0, 10*time.Minute, nil)
}

// fanoutCase is case 4 in one kube-controller-manager phase: Orca's fan-out
// against the Job controller's (and, once, against Pods created directly).
func fanoutCase(ctx context.Context, c *cluster, obs *observer, o *orca, n int, phase string, withFloor bool, profileDir string, r *report) error {
	// counted runs f and notes the API requests per Pod made until a second after
	// f returned.
	counted := func(what string, f func() (fanResult, error)) (fanResult, error) {
		time.Sleep(2 * time.Second)
		before, err := c.apiCounts(ctx)
		if err != nil {
			return fanResult{}, err
		}
		cpu0 := cpu()
		res, err := f()
		if err != nil {
			return res, fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(stderr, "  fan-out %s: %v\n", what, res)
		time.Sleep(time.Second)
		after, err := c.apiCounts(ctx)
		if err != nil {
			return res, err
		}
		r.note("case 4, API requests per Pod, %s: %s", what, after.since(before).per(float64(n)))
		r.note("case 4, CPU ms per Pod, %s (with the second after it): %s", what, cpu().since(cpu0).per(float64(n)))
		return res, nil
	}
	// orcaRound fires one fan-out; the first is profiled (-profile-dir).
	orcaRound := func(id string, profile bool) func() (fanResult, error) {
		return func() (fanResult, error) {
			wait := func() error { return nil }
			if profile && profileDir != "" {
				wait = c.profileAPIServer(ctx, filepath.Join(profileDir, "apiserver-fanout-orca.pprof"), 2)
			}
			res, err := fanOrca(ctx, obs, o, n, id)
			if err == nil {
				// The watcher writes the Tasks' state after the Pods, within its
				// budget: let it finish before the next side runs.
				err = fanStatusWritten(ctx, c, o, id)
			}
			return res, errors.Join(err, wait())
		}
	}
	var orcas, floors []fanResult
	// Against the write floor, the two sides take turns, fanRounds times.
	rounds := 1
	if withFloor {
		rounds = fanRounds
	}
	for i := range rounds {
		what := func(s string) string {
			if i > 0 {
				return fmt.Sprintf("%s, round %d", s, i+1)
			}
			return s
		}
		res, err := counted(what("Orca ("+phaseDesc[phase]+" running)"), orcaRound(fmt.Sprintf("fan-%s-%d", phase, i), i == 0 && phase == "default"))
		if err != nil {
			return err
		}
		orcas = append(orcas, res)
		if withFloor { // before the Jobs: a throttled Job controller works on long after
			res, err := counted(what("Pods created directly"), func() (fanResult, error) { return fanPods(ctx, c, obs, n, i) })
			if err != nil {
				return err
			}
			floors = append(floors, res)
		}
	}
	orca := median(orcas)
	jobs, err := counted("Jobs, "+phaseDesc[phase], func() (fanResult, error) {
		res, err := fanJobs(ctx, c, obs, n, phase)
		if err == nil {
			err = jobsSettled(ctx, c, "jobfan-"+phase, n)
		}
		return res, err
	})
	if err != nil {
		return err
	}
	rate := func(f fanResult) stat { return stat{N: f.n, P50: round(f.rate()), P99: round(f.rate())} }
	jr := rate(jobs)
	measured := fmt.Sprintf("Orca: 1 ignition -> %d Pods", n)
	r.add("4 fan-out", measured, "pods/s", rate(orca), fmt.Sprintf("%d Jobs -> Pods, %s", n, phaseDesc[phase]), &jr,
		">= Job controller", func(x float64) bool { return x >= 1 })
	if withFloor {
		pods := median(floors)
		pr := rate(pods)
		r.add("4 fan-out", measured+fmt.Sprintf(", median of %d", rounds), "pods/s", rate(orca),
			fmt.Sprintf("%d Pods created directly (write floor), median of %d, taking turns", n, rounds), &pr,
			">= 0.8x", func(x float64) bool { return x >= 0.8 })
		ps := summarize(pods.latency)
		r.add("4 fan-out", measured+", each Pod (median round)", "ms", summarize(orca.latency), "write floor, each Pod", &ps, "", nil)
	}
	return nil
}

// jobsSettled waits until the Job controller has written the status of the n Jobs
// in ns: its work (throttled by default) goes on after their Pods exist.
func jobsSettled(ctx context.Context, c *cluster, ns string, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		list, err := c.cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		done := 0
		for _, j := range list.Items {
			if j.Status.Active+j.Status.Succeeded+j.Status.Failed > 0 {
				done++
			}
		}
		if done >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d Jobs in %s have a status", done, n, ns)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// fanStatusWritten waits until the status of every Task of the fan-out lists
// the Pod that the ignition id started as active. With the watcher in its own
// process it waits on the watcher's metrics (its task status controller idle),
// which costs the API server nothing, and checks the Tasks once.
func fanStatusWritten(ctx context.Context, c *cluster, o *orca, id string) error {
	if err := o.statusIdle(ctx, 2*time.Minute); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var tasks orcav1.TaskList
		if err := c.cl.List(ctx, &tasks, client.InNamespace(fanoutNS)); err != nil {
			return err
		}
		left := 0
		for _, t := range tasks.Items {
			if !slices.Contains(t.Status.Active, dispatcher.PodName(t.Name, "bench", id)) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d fan-out Tasks do not show their Pod active", left, len(tasks.Items))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
