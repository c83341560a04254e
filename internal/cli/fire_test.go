package cli_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// ignitions consumes the ignitions of the bus into a channel.
func ignitions(t *testing.T, b *bus.Bus) <-chan *bus.Delivery {
	t.Helper()
	ch := make(chan *bus.Delivery, 10)
	c, err := b.Consume(context.Background(), bus.ConsumerOptions{Name: "test-ignitions", Subjects: []string{bus.FilterIgnitions}},
		func(_ context.Context, d *bus.Delivery) error {
			ch <- d
			return nil
		})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	return ch
}

func receiveIgnition(t *testing.T, ch <-chan *bus.Delivery) *bus.Ignition {
	t.Helper()
	select {
	case d := <-ch:
		require.NotNil(t, d.Ignition)
		return d.Ignition
	case <-time.After(10 * time.Second):
		t.Fatal("no ignition received within 10s")
		return nil
	}
}

func TestFirePublishesAnIgnitionWithDataAndNamespace(t *testing.T) {
	srv, b := testenv.NATS(t)
	received := ignitions(t, b)
	ns := env.Namespace(t)

	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), []string{"orca", "fire", "ignitor1", "--data", "hello from the cli", "-n", ns,
		"--run", "run-7", "--id", "event-1", "--nats-url", srv.URL(), "--kubeconfig", env.KubeconfigPath}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())

	ig := receiveIgnition(t, received)
	assert.Equal(t, ns, ig.Namespace)
	assert.Equal(t, "ignitor1", ig.Name)
	assert.Equal(t, "hello from the cli", string(ig.Data))
	assert.Equal(t, "run-7", ig.Run)
	assert.Equal(t, "event-1", ig.ID)
	assert.Contains(t, stdout.String(), "fired ignition "+ns+"/ignitor1")
	assert.Contains(t, stdout.String(), "orca.ignited."+ns+".ignitor1")
	assert.Contains(t, stderr.String(), `warning: no Task in namespace `+ns+` lists "ignitor1" in startOnIgnition`)

	// With a Task that starts on it: no warning; the data comes from a file, the
	// id is a fresh UUID and the run is the id.
	applyFile(t, ns, "seed-tasks.yaml")
	dataFile := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.WriteFile(dataFile, []byte("from a file"), 0o600))
	stdout.Reset()
	stderr.Reset()
	code = cli.Main(t.Context(), []string{"kubectl-orca", "fire", "-n", ns, "--data-file", dataFile, "ignitor1",
		"--nats-url", srv.URL(), "--kubeconfig", env.KubeconfigPath}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Empty(t, stderr.String())
	ig = receiveIgnition(t, received)
	assert.Equal(t, "from a file", string(ig.Data))
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, ig.ID)
	assert.Equal(t, ig.ID, ig.Run)

	// Data from stdin.
	stdout.Reset()
	code = cli.Main(t.Context(), []string{"orca", "fire", "other", "--data-file", "-", "-n", ns, "--no-check", "--nats-url", srv.URL()},
		strings.NewReader("piped"), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	ig = receiveIgnition(t, received)
	assert.Equal(t, "other", ig.Name)
	assert.Equal(t, "piped", string(ig.Data))
}

func TestFireErrorsSayWhatToDo(t *testing.T) {
	// A port where nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "nats://" + l.Addr().String()
	require.NoError(t, l.Close())

	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(t.Context(), append([]string{"orca", "fire"}, args...), nil, &stdout, &stderr)
		return code, stderr.String()
	}
	code, msg := run("ignitor1", "-n", "default", "--no-check", "--nats-url", closed, "--timeout", "300ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "fire ignition default/ignitor1")
	assert.Contains(t, msg, "cannot reach NATS at "+closed)
	assert.Contains(t, msg, "--nats-url")

	// A NATS server without Orca's stream.
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir()})
	require.NoError(t, err)
	defer srv.Shutdown()
	code, msg = run("ignitor1", "-n", "default", "--no-check", "--nats-url", srv.URL())
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "has no stream ORCA")

	code, msg = run("Ignitor_1", "--no-check")
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, `ignition "Ignitor_1" is not a valid name`)
	code, msg = run("--no-check")
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, "want one ignition name")
	code, msg = run("a", "--data", "x", "--data-file", "f")
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, "not both")
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"fire", "--help"}, {"help", "events"}, {"graph", "-h"}, {"run", "--help"}} {
		var stdout, stderr bytes.Buffer
		code := cli.Main(t.Context(), append([]string{"/usr/local/bin/kubectl-orca"}, args...), nil, &stdout, &stderr)
		assert.Equal(t, 0, code, "%v: %s", args, stderr.String())
		assert.Contains(t, stdout.String(), "kubectl orca", "%v", args)
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, cli.Main(t.Context(), []string{"orca", "frie"}, nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `unknown command "frie"`)
}

// TestFireRefusesWhatWouldStartNothing: a reused --id within the stream's
// duplicate window, and data too large for an environment variable, are refused
// with an error that says what to do, instead of being dropped later in silence.
func TestFireRefusesWhatWouldStartNothing(t *testing.T) {
	srv, b := testenv.NATS(t)
	received := ignitions(t, b)
	ns := env.Namespace(t)
	fire := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(t.Context(), append([]string{"orca", "fire", "nightly", "-n", ns, "--no-check", "--nats-url", srv.URL()}, args...),
			nil, &stdout, &stderr)
		return code, stderr.String()
	}

	code, msg := fire("--id", "nightly")
	require.Equal(t, 0, code, msg)
	assert.Equal(t, "nightly", receiveIgnition(t, received).ID)
	code, msg = fire("--id", "nightly")
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, `ignition `+ns+`/nightly not fired`)
	assert.Contains(t, msg, `id "nightly"`)
	assert.Contains(t, msg, "pass another --id")
	code, msg = fire("--id", "nightly-2")
	require.Equal(t, 0, code, msg)
	assert.Equal(t, "nightly-2", receiveIgnition(t, received).ID, "the refused ignition was not stored")

	dir := t.TempDir()
	write := func(name string, size int) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("x"), size), 0o600))
		return path
	}
	code, msg = fire("--data-file", write("big", 64<<10+1))
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "ignition data is 65537 bytes, over the limit of 65536 bytes")
	assert.Contains(t, msg, "ORCA_DATA")
	code, msg = fire("--data-file", write("max", 64<<10))
	require.Equal(t, 0, code, msg)
	assert.Equal(t, 64<<10, len(receiveIgnition(t, received).Data))
}

// In a process that continues a trace (an Orca Pod's TRACEPARENT, a CI job's),
// the ignition carries that trace context: the run joins the trace.
func TestFireJoinsTheTraceOfItsEnvironment(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	srv, b := testenv.NATS(t)
	received := ignitions(t, b)
	t.Setenv("TRACEPARENT", parent)
	t.Setenv("TRACESTATE", "vendor=abc")
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), []string{"orca", "fire", "nightly", "-n", "default", "--no-check", "--nats-url", srv.URL()}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	ig := receiveIgnition(t, received)
	assert.Equal(t, parent, ig.TraceParent)
	assert.Equal(t, "vendor=abc", ig.TraceState)
}
