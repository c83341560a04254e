package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// The NATS faults: a nats-server is SIGKILLed and started again on its store;
// in a cluster (-nats-nodes=3, the streams R3) one at a time, the next only once
// the last one is back and every replica of the streams and of Orca's durable
// consumers has caught up.

// leaderTarget is the prefix of a NATS fault's target that names a stream or
// consumer whose leader is killed: "leader:ORCA", "leader:orca-dispatcher".
const leaderTarget = "leader:"

// restartNATS kills a nats-server, starts it again on its store after down, and
// in a cluster waits until every replica has caught up. One at a time: in a
// cluster of three, two down would stop JetStream.
func (c *chaos) restartNATS(ctx context.Context, f fault) error {
	c.natsMu.Lock()
	defer c.natsMu.Unlock()
	name := f.target
	if what, ok := strings.CutPrefix(name, leaderTarget); ok {
		err := every(ctx, time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
			var err error
			name, err = c.natsLeader(ctx, what)
			return err
		})
		if err != nil {
			return fmt.Errorf("find the leader of %s: %w", what, err)
		}
		c.say("the leader of %s is %s", what, name)
	}
	p := c.procs[name]
	if p == nil {
		return fmt.Errorf("no nats-server %q", name)
	}
	killed := time.Now()
	if err := p.killAndRestart(f.down); err != nil {
		return err
	}
	c.mu.Lock()
	c.natsRuns++
	c.mu.Unlock()
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	if c.natsNodes < 2 {
		return nil
	}
	err := every(ctx, 3*time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
		return caughtUp(ctx, c.js)
	})
	if err != nil {
		return fmt.Errorf("%s back, but not caught up: %w", name, err)
	}
	took := time.Since(killed)
	c.say("%s back and every replica current %.1fs after the kill", name, took.Seconds())
	c.mu.Lock()
	c.natsCatchUps = append(c.natsCatchUps, took)
	c.mu.Unlock()
	return nil
}

// natsLeader returns the server that leads the stream ORCA, or one of its
// consumers.
func (c *chaos) natsLeader(ctx context.Context, what string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ci *jetstream.ClusterInfo
	if what == bus.DefaultStream {
		s, err := c.js.Stream(ctx, what)
		if err != nil {
			return "", err
		}
		ci = s.CachedInfo().Cluster
	} else {
		cons, err := c.js.Consumer(ctx, bus.DefaultStream, what)
		if err != nil {
			return "", err
		}
		ci = cons.CachedInfo().Cluster
	}
	if ci == nil || ci.Leader == "" {
		return "", fmt.Errorf("%s has no leader", what)
	}
	return ci.Leader, nil
}

// caughtUp says what is not caught up: a stream, or a durable consumer of
// Orca's stream, without a leader or with a replica offline or behind.
func caughtUp(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var behind []string
	check := func(what string, replicas int, ci *jetstream.ClusterInfo) {
		if replicas <= 1 {
			return
		}
		if ci == nil || ci.Leader == "" {
			behind = append(behind, what+" has no leader")
			return
		}
		current := 0
		for _, r := range ci.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if current != replicas-1 {
			behind = append(behind, fmt.Sprintf("%s: %d of %d followers current", what, current, replicas-1))
		}
	}
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		check("stream "+si.Config.Name, si.Config.Replicas, si.Cluster)
		if si.Config.Name != bus.DefaultStream {
			continue
		}
		s, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			return err
		}
		list := s.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.Durable == "" {
				continue // a reader of the suite's
			}
			replicas := ci.Config.Replicas
			if replicas == 0 {
				replicas = si.Config.Replicas
			}
			check("consumer "+ci.Name, replicas, ci.Cluster)
		}
		if err := list.Err(); err != nil {
			return err
		}
	}
	if err := streams.Err(); err != nil {
		return err
	}
	if len(behind) > 0 {
		return errors.New(strings.Join(behind, "; "))
	}
	return nil
}
