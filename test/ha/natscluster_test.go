package ha_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// natsNode is one nats-server process of a cluster; its ports and store stay
// the same across restarts.
type natsNode struct {
	name                 string
	port, route, monitor int
	conf                 string
	proc                 *proc
}

func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// natsCluster is three nats-servers with JetStream, clustered on loopback.
type natsCluster struct {
	nodes []*natsNode
}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := &natsCluster{}
	for i := range 3 {
		c.nodes = append(c.nodes, &natsNode{name: "n" + strconv.Itoa(i), port: freePort(t), route: freePort(t), monitor: freePort(t)})
	}
	dir := t.TempDir()
	for _, n := range c.nodes {
		var routes []string
		for _, o := range c.nodes {
			if o != n {
				routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(o.route))
			}
		}
		n.conf = filepath.Join(dir, n.name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: orca
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.name, n.port, n.monitor, filepath.Join(dir, n.name), n.route, strings.Join(routes, ", "))
		require.NoError(t, os.WriteFile(n.conf, []byte(conf), 0o600))
		c.start(t, n)
	}
	// JetStream answers once the cluster elected its meta leader.
	nc, js := c.connect(t)
	defer nc.Close()
	err := testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil, err
	})
	require.NoError(t, err, "JetStream cluster not up")
	return c
}

func (c *natsCluster) start(t *testing.T, n *natsNode) {
	t.Helper()
	n.proc = startProc(t, n.name, binary(t, "nats-server"), "-c", n.conf)
}

// urls returns the client URLs, comma-separated, as --nats-url takes them.
func (c *natsCluster) urls() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url())
	}
	return strings.Join(urls, ",")
}

func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (c *natsCluster) connect(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	var nc *nats.Conn
	err := testenv.Eventually(t.Context(), 30*time.Second, func(context.Context) (bool, error) {
		var err error
		nc, err = nats.Connect(c.urls(), nats.MaxReconnects(-1))
		return err == nil, err
	})
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// clients returns the names of the client connections a node holds.
func (n *natsNode) clients(t *testing.T) []string {
	t.Helper()
	code, body, err := get(t.Context(), "127.0.0.1:"+strconv.Itoa(n.monitor), "/connz?limit=1024")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	var connz struct {
		Connections []struct{ Name string } `json:"connections"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &connz))
	var names []string
	for _, c := range connz.Connections {
		names = append(names, c.Name)
	}
	return names
}

// waitCurrent waits until the stream and consumer have a leader and every
// replica is current, and returns the leader.
func waitCurrent(t *testing.T, js jetstream.JetStream, what string, info func(ctx context.Context) (*jetstream.ClusterInfo, error)) string {
	t.Helper()
	var leader, last string
	err := testenv.Eventually(t.Context(), 60*time.Second, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ci, err := info(ctx)
		if err != nil || ci == nil {
			return false, err
		}
		last = fmt.Sprintf("leader %q, replicas %+v", ci.Leader, ci.Replicas)
		if ci.Leader == "" || len(ci.Replicas) != 2 {
			return false, nil
		}
		for _, r := range ci.Replicas {
			if !r.Current || r.Offline {
				return false, nil
			}
		}
		leader = ci.Leader
		return true, nil
	})
	require.NoError(t, err, "%s not back to three current replicas: %s", what, last)
	return leader
}

// publisher fires ignitions of "flow" every 50ms, as an external system would,
// each with a 2s timeout, and keeps which were acknowledged and when.
type publisher struct {
	mu      sync.Mutex
	acked   []string
	failed  int
	ackedAt []time.Time
}

func (p *publisher) run(ctx context.Context, b *bus.Bus, ns string) {
	for i := 0; ctx.Err() == nil; i++ {
		id := "flow-" + strconv.Itoa(i)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := b.PublishIgnition(pctx, bus.Ignition{ID: id, Source: "test", Namespace: ns, Name: "flow"})
		cancel()
		p.mu.Lock()
		if err == nil {
			p.acked = append(p.acked, id)
			p.ackedAt = append(p.ackedAt, time.Now())
		} else if ctx.Err() == nil {
			p.failed++
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ackedSince returns how many publishes were acknowledged after t.
func (p *publisher) ackedSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.ackedAt {
		if at.After(t) {
			n++
		}
	}
	return n
}

// pauseAfter returns how long after t the first publish was acknowledged.
func (p *publisher) pauseAfter(t time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, at := range p.ackedAt {
		if at.After(t) {
			return at.Sub(t)
		}
	}
	return -1
}

// TestNATSClusterLosesOneNodeAtATime runs Orca on a three-node NATS cluster with
// the stream and consumers R3, and kills (SIGKILL) the stream's leader, then,
// once it is back and current, the dispatcher consumer's leader, while events
// flow: every acknowledged ignition runs once, each run is reported once, and the
// services carry on through the surviving nodes without a restart.
func TestNATSClusterLosesOneNodeAtATime(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	cluster := startNATSCluster(t)
	hook := newWebhook(t)
	apply(t, ns, workflow(hook.URL, "flow"))
	kubelet(t, ns)
	procs := map[string]*proc{}
	for _, svc := range services {
		procs[svc] = startService(t, svc, svc, "--kubeconfig", env.KubeconfigPath, "--nats-url", cluster.urls(),
			"--namespaces", ns, "--stream-replicas=3")
	}
	for _, p := range procs {
		p.waitReady(t, 60*time.Second)
	}

	nc, js := cluster.connect(t)
	defer nc.Close()
	stream, err := js.Stream(t.Context(), bus.DefaultStream)
	require.NoError(t, err)
	assert.Equal(t, 3, stream.CachedInfo().Config.Replicas, "the stream is R3")
	consumer := bus.ScopedConsumerName(dispatcher.ConsumerName, []string{ns})
	streamInfo := func(ctx context.Context) (*jetstream.ClusterInfo, error) {
		info, err := stream.Info(ctx)
		if err != nil {
			return nil, err
		}
		return info.Cluster, nil
	}
	consumerInfo := func(ctx context.Context) (*jetstream.ClusterInfo, error) {
		c, err := js.Consumer(ctx, bus.DefaultStream, consumer)
		if err != nil {
			return nil, err
		}
		return c.CachedInfo().Cluster, nil
	}
	waitCurrent(t, js, "stream", streamInfo)
	waitCurrent(t, js, "dispatcher consumer", consumerInfo)
	names := stream.ListConsumers(t.Context())
	for c := range names.Info() {
		assert.Len(t, c.Cluster.Replicas, 2, "consumer %s is R3 (replicas follow the stream)", c.Name)
	}
	require.NoError(t, names.Err())

	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{cluster.urls()}, Name: "test-publisher"})
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	pub := &publisher{}
	ctx, cancel := context.WithCancel(t.Context())
	published := make(chan struct{})
	go func() { defer close(published); pub.run(ctx, b, ns) }()
	defer func() { cancel(); <-published }()

	kill := func(what string, leader func(ctx context.Context) (*jetstream.ClusterInfo, error)) {
		n := cluster.node(waitCurrent(t, js, what, leader))
		held := n.clients(t)
		require.NoError(t, testenv.Eventually(t.Context(), 10*time.Second, func(context.Context) (bool, error) {
			return pub.ackedSince(time.Now().Add(-time.Second)) > 5, nil
		}), "events flow before the kill")
		killed := time.Now()
		n.proc.kill()
		err := testenv.Eventually(t.Context(), 60*time.Second, func(context.Context) (bool, error) {
			return pub.ackedSince(killed) >= 20, nil
		})
		require.NoError(t, err, "publishing did not resume after %s (leader of the %s) was killed", n.name, what)
		t.Logf("killed %s, leader of the %s and server of %v: first publish acknowledged %v later",
			n.name, what, held, pub.pauseAfter(killed).Round(10*time.Millisecond))
		cluster.start(t, n)
		waitCurrent(t, js, "stream", streamInfo)
		waitCurrent(t, js, "dispatcher consumer", consumerInfo)
		t.Logf("%s back and current %v after the kill", n.name, time.Since(killed).Round(100*time.Millisecond))
	}
	kill("stream", streamInfo)
	kill("dispatcher consumer", consumerInfo)
	cancel()
	<-published

	pub.mu.Lock()
	acked, failed := pub.acked, pub.failed
	pub.mu.Unlock()
	t.Logf("%d ignitions acknowledged, %d publishes failed during the elections", len(acked), failed)
	waitDelivered(t, ns, hook, acked)
	consumersSettled(t, cluster.urls(), 60*time.Second)
	checkOnce(t, cluster.urls(), ns, hook)
	for svc, p := range procs {
		assert.True(t, p.running(), "%s runs on, never restarted", svc)
		p.waitReady(t, 10*time.Second)
	}
}
