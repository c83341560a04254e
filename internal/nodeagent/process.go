package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// outputDrainTimeout bounds the wait for a container's output after its process
// ended: a process that escaped the process group may keep the pipe open.
const outputDrainTimeout = 2 * time.Second

// process is a container's first process: the leader of its own process group
// and, unless namespaces are unavailable, the init of its own PID namespace.
type process struct {
	cmd    *exec.Cmd
	output *os.File      // read end of the stdout and stderr pipe
	exited chan struct{} // closed when the process ended, before it is reaped
}

// startProcess starts the container's command through a re-execution of this
// binary that RunContainerIfChild turns into the command. stdout and stderr share
// one pipe, returned in process.output.
func startProcess(spec childSpec, env []string, dir string) (*process, error) {
	payload, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode container spec: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create output pipe: %w", err)
	}
	defer w.Close()
	newCmd := func(attr *syscall.SysProcAttr) *exec.Cmd {
		return &exec.Cmd{
			Path:        "/proc/self/exe",
			Args:        []string{"orca-sandbox-container"},
			Env:         append(append([]string{}, env...), childEnv+"="+string(payload)),
			Dir:         dir,
			Stdout:      w,
			Stderr:      w,
			SysProcAttr: attr,
		}
	}
	cmd := newCmd(namespacedAttr())
	err = cmd.Start()
	if err != nil {
		// Namespaces may be unavailable (unprivileged user namespaces disabled,
		// a restricted container): run without them; the child warns in the log
		// that the mount failed.
		cmd = newCmd(plainAttr())
		err = cmd.Start()
	}
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("start container process: %w", err)
	}
	p := &process{cmd: cmd, output: r, exited: make(chan struct{})}
	go p.awaitExit()
	return p, nil
}

// plainAttr puts the process in its own process group and kills it when the agent
// dies.
func plainAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// namespacedAttr is plainAttr plus the namespaces of a container: a PID namespace,
// whose init is the re-executed binary (when it ends, the kernel kills every
// process left in the namespace), and a private mount namespace for the
// termination message mount. Without root, both belong to a new user namespace
// that maps the current user, and the process keeps CAP_SYS_ADMIN there across
// the re-execution so that it can mount; RunContainerIfChild drops it before
// running the command.
func namespacedAttr() *syscall.SysProcAttr {
	attr := plainAttr()
	attr.Cloneflags = syscall.CLONE_NEWPID
	if os.Geteuid() == 0 {
		attr.Unshareflags = syscall.CLONE_NEWNS
		return attr
	}
	attr.Cloneflags |= syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
	attr.GidMappingsEnableSetgroups = false
	attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
	return attr
}

// awaitExit closes exited once the process has ended, leaving it unreaped so that
// its process group id cannot be reused before the group is killed.
func (p *process) awaitExit() {
	defer close(p.exited)
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return
		}
	}
}

// signalGroup sends sig to every process of the container's process group.
func (p *process) signalGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// wait waits for the process to end; when stop is closed first, it sends SIGTERM
// to the group and SIGKILL after grace(). Then it kills what is left of the group,
// reaps the process and returns its exit code (128+signal when killed).
func (p *process) wait(stop <-chan struct{}, grace func() time.Duration) int {
	select {
	case <-p.exited:
	case <-stop:
		p.signalGroup(syscall.SIGTERM)
		t := time.NewTimer(grace())
		select {
		case <-p.exited:
		case <-t.C:
			p.signalGroup(syscall.SIGKILL)
			<-p.exited
		}
		t.Stop()
	}
	p.signalGroup(syscall.SIGKILL)
	_ = p.cmd.Wait()
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return p.cmd.ProcessState.ExitCode()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	default:
		return ws.ExitStatus()
	}
}

// lookPath finds the executable file as a container runtime would: a name with a
// slash is a path (relative to dir), other names are looked up in path.
func lookPath(file, path, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := isExecutable(p); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		if p := filepath.Join(d, file); isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

func isExecutable(p string) error {
	info, err := os.Stat(p)
	if err != nil {
		return err
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}
