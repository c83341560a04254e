package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// serviceNames are Orca's four services, each a binary built from cmd/.
var serviceNames = []string{"scheduler", "dispatcher", "watcher", "actions"}

// buildBinaries builds the four services and natsd into dir.
func buildBinaries(ctx context.Context, dir string) error {
	pkgs := []string{"./test/chaos/natsd"}
	for _, s := range serviceNames {
		pkgs = append(pkgs, "./cmd/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w: %s", pkgs, err, out)
	}
	return nil
}

// proc is a supervised process: it is started again when it exits on its own (a
// crash, counted), not when the suite killed or stopped it.
type proc struct {
	name string
	path string
	args []string
	log  string
	// ready, when set, says whether the process serves (polled after a start).
	ready func(ctx context.Context) bool
	// say logs the suite's messages about the process.
	say func(format string, args ...any)

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd exited
	planned bool          // the coming exit is the suite's doing
	stopped bool          // no more restarts
	starts  int

	kills, crashes, restarts atomic.Int64
	looping                  atomic.Bool // crashed, and has not run for long since
}

// start starts the process unless it runs already.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || p.runningLocked() {
		return nil
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log of %s: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(logf, "=== chaos: start %d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, killed with the suite if the suite dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go p.wait(cmd, done, logf, time.Now())
	return nil
}

// wait reaps cmd and starts it again after a second when it exited on its own.
func (p *proc) wait(cmd *exec.Cmd, done chan struct{}, logf *os.File, started time.Time) {
	err := cmd.Wait()
	_ = logf.Close()
	close(done)
	p.mu.Lock()
	planned, stopped := p.planned, p.stopped
	p.planned = false
	p.mu.Unlock()
	if planned || stopped {
		return
	}
	// A crash loop is told once, at its first crash.
	p.crashes.Add(1)
	if time.Since(started) > 5*time.Second {
		p.looping.Store(false)
	}
	if !p.looping.Swap(true) {
		p.say("%s exited on its own (%v): %s; starting it again every second until it stays up", p.name, err, lastLine(p.log))
	}
	for {
		time.Sleep(time.Second)
		err := p.start()
		if err == nil {
			return
		}
		p.say("restart %s: %v", p.name, err)
	}
}

// kill sends SIGKILL to the process group and waits until the process is gone;
// it is not started again until restart.
func (p *proc) kill() {
	p.mu.Lock()
	if !p.runningLocked() {
		p.mu.Unlock()
		return
	}
	cmd, done := p.cmd, p.done
	p.planned = true
	p.mu.Unlock()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	p.kills.Add(1)
}

// killAndRestart kills the process, waits down, and starts it again.
func (p *proc) killAndRestart(down time.Duration) error {
	p.kill()
	p.looping.Store(false)
	time.Sleep(down)
	return p.start()
}

// restart stops the process with SIGTERM and starts it again, as an operator
// would; counted apart from kills.
func (p *proc) restart() {
	p.mu.Lock()
	if !p.runningLocked() {
		p.mu.Unlock()
		return
	}
	cmd, done := p.cmd, p.done
	p.planned = true
	p.mu.Unlock()
	terminate(cmd, done, 20*time.Second)
	p.restarts.Add(1)
	if err := p.start(); err != nil {
		p.say("restart %s: %v", p.name, err)
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and starts nothing again.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopped = true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd != nil {
		terminate(cmd, done, grace)
	}
}

// terminate sends SIGTERM to the process group, then SIGKILL after grace, and
// waits until the process exited.
func terminate(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// running reports whether the process runs now.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *proc) runningLocked() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitReady polls ready until it holds or timeout passes.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	if p.ready == nil {
		return nil
	}
	err := testenv.Eventually(ctx, timeout, func(ctx context.Context) (bool, error) {
		return p.ready(ctx), nil
	})
	if err != nil {
		return fmt.Errorf("%s not ready after %s (log %s: %s)", p.name, timeout, p.log, lastLine(p.log))
	}
	return nil
}

// lastLine returns the last line of a log file, for error messages.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// freeAddr returns a loopback address with a port that is free now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// natsNodes starts size nats-servers (natsd) on their own stores; with more than
// one they form a cluster. The ports stay the same across restarts.
func natsNodes(bin, dir string, size int, say func(string, ...any)) ([]*proc, []string, error) {
	var clients, routes, clusters []string
	for range size {
		c, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		clients = append(clients, c)
		if size > 1 {
			r, err := freeAddr()
			if err != nil {
				return nil, nil, err
			}
			clusters = append(clusters, r)
			routes = append(routes, "nats-route://"+r)
		}
	}
	var nodes []*proc
	var urls []string
	for i, addr := range clients {
		name := "nats-" + strconv.Itoa(i)
		args := []string{"-addr", addr, "-store", filepath.Join(dir, name), "-name", name}
		if size > 1 {
			args = append(args, "-cluster", clusters[i], "-routes", strings.Join(routes, ","))
		}
		nodes = append(nodes, &proc{
			name: name, path: filepath.Join(bin, "natsd"), args: args,
			log: filepath.Join(dir, name+".log"), say: say,
			ready: func(ctx context.Context) bool {
				conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
				if err == nil {
					_ = conn.Close()
				}
				return err == nil
			},
		})
		urls = append(urls, "nats://"+addr)
	}
	return nodes, urls, nil
}

// serviceProcs returns replicas processes of each of Orca's services, started
// against kubeconfig and the NATS URLs, each with its own readiness port.
func serviceProcs(bin, dir, kubeconfig string, natsURLs []string, replicas int, leaseNamespace string, say func(string, ...any)) ([]*proc, error) {
	var procs []*proc
	for _, svc := range serviceNames {
		for i := range replicas {
			probe, err := freeAddr()
			if err != nil {
				return nil, err
			}
			name := svc
			if replicas > 1 {
				name += "-" + strconv.Itoa(i)
			}
			args := []string{
				"--kubeconfig", kubeconfig, "--nats-url", strings.Join(natsURLs, ","),
				"--health-probe-bind-address", probe, "--metrics-bind-address", "0",
			}
			if replicas > 1 && (svc == "scheduler" || svc == "watcher") {
				args = append(args, "--leader-elect", "--leader-election-namespace", leaseNamespace)
			}
			procs = append(procs, &proc{
				name: name, path: filepath.Join(bin, svc), args: args,
				log: filepath.Join(dir, name+".log"), say: say,
				ready: func(ctx context.Context) bool { return httpOK(ctx, "http://"+probe+"/readyz") },
			})
		}
	}
	return procs, nil
}

// httpOK reports whether a GET of url answers 200.
func httpOK(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// serviceOf returns the service a process belongs to ("dispatcher-1" -> "dispatcher").
func serviceOf(p *proc) string {
	for _, s := range serviceNames {
		if p.name == s || strings.HasPrefix(p.name, s+"-") {
			return s
		}
	}
	return p.name
}

// startAll starts the processes and waits until each is ready.
func startAll(ctx context.Context, procs []*proc, timeout time.Duration) error {
	for _, p := range procs {
		if err := p.start(); err != nil {
			return err
		}
	}
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.waitReady(ctx, timeout))
	}
	return errors.Join(errs...)
}
