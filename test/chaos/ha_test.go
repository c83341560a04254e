package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The HA mode's service faults (-replicas=2): the leader of the scheduler or the
// watcher is SIGKILLed and its successor timed through the Lease, and one of the
// two replicas of the dispatcher or the actions service is SIGKILLed while the
// other serves. natscluster_test.go has the NATS faults.

// siblings returns the other processes of p's service.
func (c *chaos) siblings(p *proc) []*proc {
	var out []*proc
	for _, q := range c.procs {
		if q != p && serviceOf(q) == serviceOf(p) {
			out = append(out, q)
		}
	}
	return out
}

// serviceLock serialises the faults of one service: in HA mode no two of its
// replicas are down because of the suite at once. Unless wait, it gives up at
// once when another fault of the service is under way (ok false).
func (c *chaos) serviceLock(svc string, wait bool) (unlock func(), ok bool) {
	c.mu.Lock()
	ch, found := c.serviceLocks[svc]
	if !found {
		ch = make(chan struct{}, 1)
		c.serviceLocks[svc] = ch
	}
	c.mu.Unlock()
	if wait {
		ch <- struct{}{}
	} else {
		select {
		case ch <- struct{}{}:
		default:
			return nil, false
		}
	}
	return func() { <-ch }, true
}

// siblingsReady waits until the other replicas of p's service serve.
func (c *chaos) siblingsReady(ctx context.Context, p *proc) error {
	for _, q := range c.siblings(p) {
		if err := q.waitReady(ctx, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// killReplica kills one replica of a service whose other replicas serve, starts
// it again after down and waits until it serves. While another replica of the
// service is being killed and started again, it kills nothing.
func (c *chaos) killReplica(ctx context.Context, p *proc, down time.Duration) error {
	unlock, ok := c.serviceLock(serviceOf(p), false)
	if !ok {
		c.say("kill of %s skipped: a replica of %s is being started again", p.name, serviceOf(p))
		return nil
	}
	defer unlock()
	if err := c.siblingsReady(ctx, p); err != nil {
		return err
	}
	if err := p.killAndRestart(down); err != nil {
		return err
	}
	return p.waitReady(ctx, time.Minute)
}

// killLeader kills the process that leads svc's election, once the others
// serve, starts it again after down, and records how long after the kill the
// Lease had another holder.
func (c *chaos) killLeader(ctx context.Context, svc string, down time.Duration) error {
	unlock, _ := c.serviceLock(svc, true)
	defer unlock()
	lease := "orca-" + svc
	var leader *proc
	var holder string
	err := every(ctx, 2*time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
		var err error
		if leader, err = c.leaderOf(ctx, svc); err != nil {
			return err
		}
		if err := c.siblingsReady(ctx, leader); err != nil {
			return err
		}
		holder, err = c.leaseHolder(ctx, lease)
		return err
	})
	if err != nil {
		return fmt.Errorf("find the leader of %s: %w", svc, err)
	}
	killed := time.Now()
	if err := leader.killAndRestart(down); err != nil {
		return err
	}
	err = every(ctx, 2*time.Minute, 100*time.Millisecond, func(ctx context.Context) error {
		now, err := c.leaseHolder(ctx, lease)
		if err == nil && (now == "" || now == holder) {
			err = fmt.Errorf("lease %s still held by %q", lease, now)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("nobody took over from %s: %w", leader.name, err)
	}
	took := time.Since(killed)
	c.say("%s took over from %s (killed) %.1fs after the kill", lease, leader.name, took.Seconds())
	c.mu.Lock()
	c.takeovers[svc] = append(c.takeovers[svc], took)
	c.mu.Unlock()
	return leader.waitReady(ctx, time.Minute)
}

// leaderOf returns the process of svc that says it leads: exactly one.
func (c *chaos) leaderOf(ctx context.Context, svc string) (*proc, error) {
	var leaders []string
	var leader *proc
	for _, p := range c.procs {
		if serviceOf(p) != svc || p.metrics == "" || !p.running() {
			continue
		}
		v, err := scrape(ctx, p.metrics, "leader_election_master_status", `name="orca-`+svc+`"`)
		if err != nil {
			continue // starting, or just killed
		}
		if v == 1 {
			leader = p
			leaders = append(leaders, p.name)
		}
	}
	if len(leaders) != 1 {
		return nil, fmt.Errorf("%d processes of %s lead: %v", len(leaders), svc, leaders)
	}
	return leader, nil
}

// leaseHolder returns the holder identity of the Lease in the suite's namespace.
func (c *chaos) leaseHolder(ctx context.Context, name string) (string, error) {
	var l coordinationv1.Lease
	if err := c.cp.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &l); err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// scrape returns the sum of the samples of a metric whose labels contain label.
func scrape(ctx context.Context, addr, name, label string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics of %s: %s", addr, resp.Status)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}
