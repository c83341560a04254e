package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// namespace holds the suite's Tasks and Pods.
const namespace = "orca-chaos"

// TestChaos fires N ignitions while faults hit every part of the system, waits
// until it is quiet and checks every run; see the package comment.
func TestChaos(t *testing.T) {
	if !enabled() {
		t.Skip("the chaos suite runs with `make chaos` (or ORCA_CHAOS=1, or any of its flags)")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64N(1_000_000) + 1
	}
	dir, err := os.MkdirTemp("", "orca-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	log := &logger{start: time.Now()}
	if log.file, err = os.Create(filepath.Join(dir, "chaos.log")); err != nil {
		t.Fatal(err)
	}
	log.say("seed %d, %d ignitions over %s, work folder %s", seed, *flagN, *flagDuration, dir)

	h := &harness{dir: dir, say: log.say}
	defer func() {
		h.stop()
		_ = os.RemoveAll(filepath.Join(dir, "bin"))
		if t.Failed() || *flagKeep {
			log.say("logs and stores kept in %s", dir)
			_ = log.file.Close()
		} else {
			_ = log.file.Close()
			_ = os.RemoveAll(dir)
		}
	}()
	ctx := t.Context()
	if err := h.start(ctx); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(seed, 0x0c4a05))
	runs := newRuns(rng, seed, *flagN)
	plan := newPlan(rng, planOptions{
		duration: *flagDuration, killEvery: *flagKillEvery, natsRestarts: *flagNATSRestarts,
		refusal: *flagRefusal, consumerGrace: *flagGrace,
		services: procNames(h.services), natsNodes: procNames(h.nats),
		replicas: *flagReplicas, leaderKillEvery: *flagLeaderKillEvery,
	})
	for _, f := range plan {
		if f.kind != faultKill {
			log.say("plan: %s", f)
		}
	}
	c := &chaos{
		procs: h.byName(), cp: h.cp, refusals: h.refusals, publisher: h.publisher, js: h.js,
		natsURLs: strings.Join(h.natsURLs, ","), natsNodes: len(h.nats), grace: *flagGrace, say: log.say,
		serviceLocks: map[string]chan struct{}{}, takeovers: map[string][]time.Duration{},
	}

	if err := applyTicks(ctx, h.cp.client, namespace); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { c.run(ctx, start, plan) })
	fireErr := fire(ctx, h.publisher, runs, start, *flagDuration)
	log.say("fired %d ignitions in %.1fs", len(runs), time.Since(start).Seconds())
	wg.Wait()
	log.say("faults over")
	if fireErr != nil {
		t.Fatal(fireErr)
	}
	if err := suspendTicks(ctx, h.cp.client, namespace); err != nil {
		t.Fatal(err)
	}
	for _, err := range c.errs {
		t.Errorf("%v", err)
	}

	// The suite ended every fault; whatever is still down now is a crash loop.
	quietErr := waitQuiet(ctx, h.kubelet, h.js, h.all(), *flagQuiet, *flagQuietTimeout, log.say)
	if quietErr != nil {
		t.Error(quietErr)
	} else {
		log.say("quiet")
	}

	o := &outcome{}
	all, err := listPods(ctx, h.cp.client, namespace)
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	var tickPods []*corev1.Pod
	for i := range all {
		if isTick(&all[i]) {
			tickPods = append(tickPods, &all[i])
		} else {
			pods = append(pods, all[i])
		}
	}
	o.checkPods(pods, runs, h.kubelet)
	o.checkAttempts(pods, runs)
	o.checkParallelism(pods, h.kubelet)
	if err := o.checkCleaned(ctx, h.js, pods, runs); err != nil {
		t.Error(err)
	}
	ticks, err := readTicks(ctx, h.js, namespace)
	if err != nil {
		t.Error(err)
	}
	var ign orcav1.Ignitor
	if err := h.cp.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: tickIgnitor}, &ign); err != nil {
		t.Fatal(err)
	}
	o.checkTicks(ticks, &ign, tickPods)
	o.checkWebhooks(h.receiver.byRun(), runs)
	dead, err := readDeadLetters(ctx, h.js)
	if err != nil {
		t.Error(err)
	}
	o.checkDeadLetters(dead, c.injected)
	if err := o.countTaskEvents(ctx, h.js); err != nil {
		t.Error(err)
	}
	o.checkConsumers(c.deletions, *flagGrace)
	for _, a := range assertions {
		if n := o.failureCounts[a]; n > 0 {
			t.Errorf("%s: broken %d times, e.g.\n  %s", a, n, strings.Join(o.failures[a], "\n  "))
		} else {
			log.say("holds: %s", a)
		}
	}
	figures = h.figures(seed, o, c, time.Since(log.start))
}

// fire publishes the runs' ignitions evenly over d.
func fire(ctx context.Context, p *publisher, runs []*run, start time.Time, d time.Duration) error {
	for i, r := range runs {
		at := start.Add(time.Duration(int64(d) * int64(i) / int64(len(runs))))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(at)):
		}
		if err := p.fire(ctx, r); err != nil {
			return fmt.Errorf("fire run %s: %w", r.id, err)
		}
	}
	return nil
}

// harness is the running system: control plane, NATS, the four services, the
// kubelet stand-in, the refusing admission webhook and the webhook receiver.
type harness struct {
	dir string
	say func(string, ...any)

	cp        *controlPlane
	refusals  *refusals
	receiver  *receiver
	nats      []*proc
	natsURLs  []string
	services  []*proc
	kubelet   *kubelet
	publisher *publisher
	js        jetstream.JetStream

	stopKubelet context.CancelFunc
}

func (h *harness) start(ctx context.Context) error {
	bin := filepath.Join(h.dir, "bin")
	built := make(chan error, 1)
	go func() { built <- buildBinaries(ctx, bin) }()
	h.say("building the services and natsd, starting etcd and kube-apiserver")
	var err error
	if h.cp, err = startControlPlane(h.dir); err != nil {
		return errors.Join(err, <-built)
	}
	if err := <-built; err != nil {
		return err
	}
	c := h.cp.client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return err
	}
	h.refusals = newRefusals("chain-2", "fan-3")
	if err := h.refusals.install(ctx, c, namespace); err != nil {
		return err
	}
	h.receiver = newReceiver()
	if err := applyWorkflow(ctx, c, namespace, h.receiver.url()); err != nil {
		return err
	}
	if err := applyRetried(ctx, c, namespace); err != nil {
		return err
	}
	if err := applyCleaned(ctx, c, namespace); err != nil {
		return err
	}

	if h.nats, h.natsURLs, err = natsNodes(bin, h.dir, *flagNATSNodes, h.say); err != nil {
		return err
	}
	if err := startAll(ctx, h.nats, 30*time.Second); err != nil {
		return err
	}
	h.services, err = serviceProcs(bin, h.dir, h.cp.kubeconfig, h.natsURLs, *flagReplicas, namespace, h.say)
	if err != nil {
		return err
	}
	h.say("starting %d service processes", len(h.services))
	if err := startAll(ctx, h.services, 2*time.Minute); err != nil {
		return err
	}

	if h.kubelet, err = newKubelet(h.cp.config, c, namespace); err != nil {
		return err
	}
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.stopKubelet = cancel
	go h.kubelet.run(kctx, 16)

	if h.publisher, err = newPublisher(strings.Join(h.natsURLs, ","), namespace); err != nil {
		return err
	}
	h.js = h.publisher.js
	// The services made the stream; the suite fires into it.
	return eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := h.js.Stream(ctx, bus.DefaultStream)
		return err
	})
}

// stop stops everything the harness started, services first.
func (h *harness) stop() {
	for _, p := range h.services {
		p.stop(20 * time.Second)
	}
	if h.stopKubelet != nil {
		h.stopKubelet()
	}
	if h.publisher != nil {
		h.publisher.close()
	}
	for _, p := range h.nats {
		p.stop(10 * time.Second)
	}
	if h.receiver != nil {
		h.receiver.close()
	}
	if h.refusals != nil {
		h.refusals.close()
	}
	if h.cp != nil {
		if err := h.cp.stop(); err != nil {
			h.say("stop control plane: %v", err)
		}
	}
}

func (h *harness) all() []*proc { return append(append([]*proc{}, h.nats...), h.services...) }

func (h *harness) byName() map[string]*proc {
	m := map[string]*proc{}
	for _, p := range h.all() {
		m[p.name] = p
	}
	return m
}

func procNames(ps []*proc) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name
	}
	return names
}

// figures returns the suite's last line.
func (h *harness) figures(seed uint64, o *outcome, c *chaos, wall time.Duration) string {
	kills := map[string]int64{}
	var totalKills, crashes, restarts int64
	for _, p := range h.services {
		kills[serviceOf(p)] += p.kills.Load()
		totalKills += p.kills.Load()
		restarts += p.restarts.Load()
	}
	for _, p := range h.all() {
		crashes += p.crashes.Load()
	}
	var perService []string
	for _, s := range serviceNames {
		perService = append(perService, fmt.Sprintf("%s=%d", s, kills[s]))
	}
	line := fmt.Sprintf("chaos figures: seed=%d fired=%d complete=%d lost=%d duplicatePods=%d duplicateWebhooks=%d "+
		"ticks=%d tickLateMax=%s "+
		"serviceKills=%d(%s) serviceCrashes=%d serviceRestartsForConsumer=%d natsRestarts=%d apiserverRestarts=%d consumersDeleted=%d "+
		"podCreatesRefused=%d deadLetters=%d(injected %d) taskEventsStoredTwice=%d limitedMostAtOnce=%d/%d cleanedPodsDeleted=%d/%d p50=%s p99=%s",
		seed, o.fired, o.complete, o.lost, o.duplicatePods, o.duplicateWebhooks,
		o.ticks, o.tickLate.Round(10*time.Millisecond),
		totalKills, strings.Join(perService, ","), crashes, restarts, c.natsRuns, c.apiRuns, len(c.deletions),
		h.refusals.refused.Load(), o.deadLetters, o.expectedDead, o.duplicateTaskEvents, o.limitedMost, limitedParallelism, o.cleanedDeleted, o.fired,
		percentile(o.latencies, 50).Round(time.Millisecond), percentile(o.latencies, 99).Round(time.Millisecond))
	if len(h.services) > len(serviceNames) || len(h.nats) > 1 {
		var takeovers []string
		for _, svc := range []string{"scheduler", "watcher"} {
			ds := c.takeovers[svc]
			takeovers = append(takeovers, fmt.Sprintf("%s:%d/%s/%s", svc, len(ds),
				percentile(ds, 50).Round(100*time.Millisecond), percentile(ds, 100).Round(100*time.Millisecond)))
		}
		line += fmt.Sprintf(" replicas=%d natsNodes=%d takeovers(n/p50/max)=%s natsCaughtUp(p50/max)=%s/%s",
			len(h.services)/len(serviceNames), len(h.nats), strings.Join(takeovers, ","),
			percentile(c.natsCatchUps, 50).Round(100*time.Millisecond), percentile(c.natsCatchUps, 100).Round(100*time.Millisecond))
	}
	return line + " wall=" + wall.Round(time.Second).String()
}
