package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// guardEnv marks a process started as a sandbox's guard; its value is the folder.
const guardEnv = "ORCA_SANDBOX_GUARD"

// RunGuardIfChild runs a sandbox's guard when Start started this process as one;
// otherwise it returns at once. A program that calls Start must call it first
// thing in main: Start re-executes the program (/proc/self/exe) as the guard.
//
// kube-controller-manager, kube-scheduler and the containers die with the
// process that started them, but etcd and kube-apiserver (started by envtest) do
// not. The guard holds the read end of a pipe whose write end only the sandbox's
// process has: when that process ends, however it ends (kill -9 included), the
// guard reads EOF, kills every process whose command line names the folder, and
// exits.
func RunGuardIfChild() {
	dir, ok := os.LookupEnv(guardEnv)
	if !ok {
		return
	}
	signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, pid := range leftovers(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	os.Exit(0)
}

// guard is the handle of a running guard.
type guard struct {
	cmd  *exec.Cmd
	pipe *os.File
}

// startGuard starts the guard of the sandbox in dir (an absolute path).
func startGuard(dir string) (*guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the sandbox guard: %w", err)
	}
	defer func() { _ = r.Close() }()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), guardEnv+"="+dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, nil, os.Stderr
	// Its own process group: Ctrl-C in the terminal goes to the sandbox's process,
	// which stops everything in order, and not to the guard.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("start the sandbox guard: %w", err)
	}
	return &guard{cmd: cmd, pipe: w}, nil
}

// stop lets the guard sweep (nothing is left after an orderly stop) and waits.
func (g *guard) stop() {
	_ = g.pipe.Close()
	_ = g.cmd.Wait()
}
