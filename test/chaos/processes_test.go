package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// proc is a supervised process: it is started again when it exits on its own (a
// crash, counted), not when the suite killed or stopped it.
type proc struct {
	name string
	path string
	args []string
	log  string
	// ready, when set, says whether the process serves (polled after a start).
	ready func(ctx context.Context) bool
	// metrics is the address of its /metrics, when it serves them.
	metrics string
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

// planExit returns the running process and marks its coming exit as the
// suite's doing; ok is false when it does not run.
func (p *proc) planExit() (cmd *exec.Cmd, done <-chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return nil, nil, false
	}
	p.planned = true
	return p.cmd, p.done, true
}

// kill sends SIGKILL to the process group and waits until the process is gone;
// it is not started again until start.
func (p *proc) kill() {
	if cmd, done, ok := p.planExit(); ok {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		p.kills.Add(1)
	}
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
	cmd, done, ok := p.planExit()
	if !ok {
		return
	}
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
