package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Command is a control-plane binary to run.
type Command struct {
	// Name is the binary's name in the assets folder, e.g. "kube-scheduler".
	Name string
	// AssetsDir holds the binary.
	AssetsDir string
	// Args are its flags.
	Args []string
	// LogPath receives its stdout and stderr.
	LogPath string
}

// Process is a running control-plane binary. It is killed when the process that
// started it dies, so that an interrupted parent leaves nothing behind.
type Process struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{}
	err       error
}

// Start starts c.
func Start(c Command) (*Process, error) {
	if err := CheckAssets(c.AssetsDir, c.Name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(c.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("create log folder of %s: %w", c.Name, err)
	}
	logf, err := os.Create(c.LogPath)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", c.Name, err)
	}
	cmd := exec.Command(filepath.Join(c.AssetsDir, c.Name), c.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	p := &Process{name: c.Name, log: c.LogPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err says why the process exited, once Done is closed.
func (p *Process) Err() error {
	return fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, p.log)
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit. Stopping
// a nil or stopped Process does nothing.
func (p *Process) Stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}
