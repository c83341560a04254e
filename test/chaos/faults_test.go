package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// Kinds of faults.
const (
	faultKill      = "kill"      // SIGKILL a service process, start it again after down
	faultLeader    = "leader"    // SIGKILL the process that leads a service's election, start it again after down
	faultNATS      = "nats"      // SIGKILL a nats-server, start it again on its store after down
	faultAPIServer = "apiserver" // stop kube-apiserver, start it again on the same etcd after down
	faultConsumer  = "consumer"  // delete a durable consumer
	faultRefuseOn  = "refuse-on" // the admission webhook starts refusing Pod creates
	faultRefuseOff = "refuse-off"
	faultInject    = "inject" // publish the malformed messages
)

// fault is one step of the plan, at a time after the firing started.
type fault struct {
	at     time.Duration
	kind   string
	target string // a process or a consumer
	down   time.Duration
}

func (f fault) String() string {
	s := fmt.Sprintf("%6.1fs %s", f.at.Seconds(), f.kind)
	if f.target != "" {
		s += " " + f.target
	}
	if f.down > 0 {
		s += fmt.Sprintf(" (down %.1fs)", f.down.Seconds())
	}
	return s
}

// planOptions shape the plan.
type planOptions struct {
	duration      time.Duration // of the firing
	killEvery     time.Duration // mean time between service kills
	natsRestarts  int
	refusal       time.Duration // length of the refusal stretch
	consumerGrace time.Duration // no kill of a service for this long after its consumer was deleted
	services      []string      // process names of the services
	natsNodes     []string      // process names of the nats-servers
	// leaderKillEvery is the mean time between two kills of the leader of the
	// scheduler, and of the watcher, with several replicas (HA mode): the
	// other kills then hit the dispatchers and the actions services.
	leaderKillEvery time.Duration
	replicas        int
}

// newPlan draws the faults from rng: the same seed and options give the same plan.
//
// The durable consumers are deleted early, one after the other, and the refusal
// stretch starts only once both came back (by themselves, or by the restart that
// follows the grace period): a consumer made again from scratch would reset the
// delivery counts of the refused events, and the stretch would no longer show
// whether a retryable failure outlasting the retry budget loses an event.
func newPlan(rng *rand.Rand, o planOptions) []fault {
	d := o.duration
	at := func(frac float64) time.Duration { // frac of d, +-5% of d
		return time.Duration((frac + (rng.Float64()-0.5)*0.1) * float64(d))
	}
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	var plan []fault
	// Each consumer is deleted once, in an order drawn from the seed; its service
	// is spared from kills for the grace period.
	order := slices.Clone(consumers)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	spared := map[string][2]time.Duration{} // service -> no kills in [from, to)
	var consumersBack time.Duration
	for i, name := range order {
		f := fault{at: time.Duration(float64(d) * (0.05 + 0.1*float64(i))), kind: faultConsumer, target: name}
		plan = append(plan, f)
		spared[consumerService(name)] = [2]time.Duration{f.at, f.at + o.consumerGrace}
		consumersBack = max(consumersBack, f.at+o.consumerGrace)
	}
	refuseOn := max(at(0.4), consumersBack+time.Second)
	plan = append(plan,
		fault{at: refuseOn, kind: faultRefuseOn},
		fault{at: refuseOn + o.refusal, kind: faultRefuseOff},
		fault{at: at(0.5), kind: faultInject},
		fault{at: at(0.55), kind: faultAPIServer, down: between(5*time.Second, 10*time.Second)},
	)
	// In a cluster, the servers that lead the stream and the consumers are
	// killed in turn, and now and then another one.
	natsTargets := []string{leaderTarget + bus.DefaultStream}
	for _, name := range consumers {
		natsTargets = append(natsTargets, leaderTarget+name)
	}
	natsTargets = append(natsTargets, "")
	for i := range o.natsRestarts {
		frac := 0.3 + 0.5*float64(i)/float64(max(o.natsRestarts-1, 1))
		target := o.natsNodes[rng.IntN(len(o.natsNodes))]
		if len(o.natsNodes) > 1 && natsTargets[i%len(natsTargets)] != "" {
			target = natsTargets[i%len(natsTargets)]
		}
		plan = append(plan, fault{at: at(frac), kind: faultNATS, target: target, down: between(2*time.Second, 6*time.Second)})
	}
	killable := o.services
	if o.replicas > 1 {
		killable = nil
		for _, name := range o.services {
			if svc := serviceOfName(name); svc != "scheduler" && svc != "watcher" {
				killable = append(killable, name)
			}
		}
		for _, svc := range []string{"scheduler", "watcher"} {
			e := o.leaderKillEvery
			for t := between(e/2, e); t < d; t += between(e*3/4, e*5/4) {
				plan = append(plan, fault{at: t, kind: faultLeader, target: svc, down: between(0, time.Second)})
			}
		}
	}
	isSpared := func(name string, t time.Duration) bool {
		w, ok := spared[serviceOfName(name)]
		return ok && t >= w[0] && t < w[1]
	}
	for t := between(o.killEvery/2, o.killEvery*3/2); t < d; t += between(o.killEvery/2, o.killEvery*3/2) {
		if !slices.ContainsFunc(killable, func(name string) bool { return !isSpared(name, t) }) {
			continue // every service that may be killed is spared now
		}
		target := killable[rng.IntN(len(killable))]
		for isSpared(target, t) {
			target = killable[rng.IntN(len(killable))]
		}
		plan = append(plan, fault{at: t, kind: faultKill, target: target, down: between(0, time.Second)})
	}
	slices.SortStableFunc(plan, func(a, b fault) int { return int(a.at - b.at) })
	return plan
}

// consumerService names the service that reads a durable consumer.
func consumerService(consumer string) string {
	if consumer == dispatcher.JoinConsumerName {
		return "dispatcher"
	}
	return strings.TrimPrefix(consumer, "orca-")
}

// serviceOfName is serviceOf for a process name.
func serviceOfName(name string) string { return serviceOf(&proc{name: name}) }

// consumerDeletion records a deleted consumer and whether the running service
// made it again by itself, without a restart.
type consumerDeletion struct {
	name string
	// recreated is how long after the deletion the consumer existed again; 0
	// means not within the grace period.
	recreated time.Duration
}

// chaos carries out a plan against the running system.
type chaos struct {
	procs     map[string]*proc
	cp        *controlPlane
	refusals  *refusals
	publisher *publisher
	js        jetstream.JetStream
	natsURLs  string
	natsNodes int
	grace     time.Duration
	say       func(string, ...any)

	natsMu       sync.Mutex // one nats-server down at a time
	mu           sync.Mutex
	serviceLocks map[string]chan struct{}
	takeovers    map[string][]time.Duration // by service: kill of its leader -> another holds the Lease
	natsCatchUps []time.Duration            // kill of a nats-server -> every replica current
	natsRuns     int
	apiRuns      int
	deletions    []consumerDeletion
	injected     []injected
	refusalDone  bool
	errs         []error
}

// run carries out the plan from start until its last fault, each fault in a
// goroutine of its own, and returns once every fault is over.
func (c *chaos) run(ctx context.Context, start time.Time, plan []fault) {
	var wg sync.WaitGroup
	for _, f := range plan {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-time.After(time.Until(start.Add(f.at))):
		}
		c.say("fault: %s", f)
		wg.Go(func() {
			if err := c.do(ctx, f); err != nil {
				c.say("fault %s failed: %v", f, err)
				c.mu.Lock()
				c.errs = append(c.errs, fmt.Errorf("fault %s: %w", f, err))
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func (c *chaos) do(ctx context.Context, f fault) error {
	switch f.kind {
	case faultKill:
		p := c.procs[f.target]
		if len(c.siblings(p)) > 0 {
			return c.killReplica(ctx, p, f.down)
		}
		return p.killAndRestart(f.down)
	case faultLeader:
		return c.killLeader(ctx, f.target, f.down)
	case faultNATS:
		return c.restartNATS(ctx, f)
	case faultAPIServer:
		if err := c.cp.restartAPIServer(f.down); err != nil {
			return err
		}
		c.mu.Lock()
		c.apiRuns++
		c.mu.Unlock()
		return nil
	case faultConsumer:
		return c.deleteConsumer(ctx, f.target)
	case faultRefuseOn:
		c.refusals.on.Store(true)
	case faultRefuseOff:
		c.refusals.on.Store(false)
		c.mu.Lock()
		c.refusalDone = true
		c.mu.Unlock()
	case faultInject:
		in, err := c.publisher.inject(ctx)
		c.mu.Lock()
		c.injected = append(c.injected, in...)
		c.mu.Unlock()
		return err
	default:
		return fmt.Errorf("unknown fault %q", f.kind)
	}
	return nil
}

// deleteConsumer deletes a durable consumer, then watches for the running
// service to make it again, for the grace period.
func (c *chaos) deleteConsumer(ctx context.Context, name string) error {
	nc, err := nats.Connect(c.natsURLs, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	err = eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		err := js.DeleteConsumer(ctx, bus.DefaultStream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil // deleted by an attempt whose answer was lost
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	deleted := time.Now()
	d := consumerDeletion{name: name}
	err = testenv.Eventually(ctx, c.grace, func(ctx context.Context) (bool, error) {
		_, err := js.Consumer(ctx, bus.DefaultStream, name)
		return err == nil, nil
	})
	if err == nil {
		d.recreated = max(time.Since(deleted), time.Millisecond)
		c.say("consumer %s made again by its service %.1fs after its deletion", name, d.recreated.Seconds())
	} else {
		// As a liveness probe or an operator would: restart the service.
		c.say("consumer %s still missing %s after its deletion: restarting its service", name, c.grace)
		for _, p := range c.procs {
			if serviceOf(p) == consumerService(name) {
				p.restart()
			}
		}
	}
	c.mu.Lock()
	c.deletions = append(c.deletions, d)
	c.mu.Unlock()
	return nil
}
