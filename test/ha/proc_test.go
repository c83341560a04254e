package ha_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// proc is one process of a service (or of nats-server), its output kept for the
// test and printed when the test fails.
type proc struct {
	name            string
	cmd             *exec.Cmd
	probes, metrics string // listen addresses, host:port
	out             testenv.Buffer
	exited          chan struct{}
	startedAt       time.Time
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(freePort(t)) }

// startProc starts a binary with args; the process is killed when the test ends.
func startProc(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(path, args...), exited: make(chan struct{}), startedAt: time.Now()}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	require.NoError(t, p.cmd.Start(), "start %s", name)
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, tail(p.out.String(), 40))
		}
	})
	return p
}

// startService starts one of Orca's services with probes and metrics on free
// ports; args give at least --kubeconfig and --nats-url.
func startService(t *testing.T, name, svc string, args ...string) *proc {
	t.Helper()
	probes, metrics := freeAddr(t), freeAddr(t)
	all := append([]string{"--health-probe-bind-address", probes, "--metrics-bind-address", metrics}, args...)
	if svc == "actions" {
		// The tests' webhook receivers listen on this host, which webhooks may
		// not reach unless allowed.
		all = append(all, "--webhook-allowed-cidrs=127.0.0.0/8")
	}
	p := startProc(t, name, binary(t, svc), all...)
	p.probes, p.metrics = probes, metrics
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM to each process, then waits until all exited, or fails
// the test.
func stop(t *testing.T, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, p := range procs {
		p.waitExit(t)
	}
}

// waitExit waits until the process exited, or fails the test.
func (p *proc) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still runs after 30s", p.name)
	}
}

// get returns the status code and body of a probe or metrics path.
func get(ctx context.Context, addr, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitReady waits until /readyz answers 200.
func (p *proc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	var last string
	err := testenv.Eventually(t.Context(), timeout, func(ctx context.Context) (bool, error) {
		if !p.running() {
			return false, fmt.Errorf("%s exited", p.name)
		}
		code, body, err := get(ctx, p.probes, "/readyz")
		last = fmt.Sprintf("%d %s", code, body)
		return code == http.StatusOK, err
	})
	require.NoError(t, err, "%s not ready: %s", p.name, last)
}

// metric returns the sum of the samples of a metric whose labels include the
// given name="value" pairs; 0 when there is none.
func (p *proc) metric(ctx context.Context, name string, labels ...string) (float64, error) {
	code, body, err := get(ctx, p.metrics, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("metrics of %s: status %d", p.name, code)
	}
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, labels[i]+`="`+labels[i+1]+`"`) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}
