package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// superviseCommand runs the container's command as the only child of this
// process, the init of the container's PID namespace, and returns the command's
// exit code (128+signal when a signal killed it). It reaps every process that
// ends in the namespace meanwhile. When this process exits, or the agent's death
// kills it, the kernel kills every process left in the namespace: a container
// leaves no process behind.
//
// The command runs in this process's process group, so the agent's signals to
// the group reach it directly; this process only keeps the signals from ending
// it first.
func superviseCommand(spec childSpec) int {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for range signals {
		}
	}()
	pid, err := syscall.ForkExec(spec.Path, spec.Argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "orca sandbox: run %s: %v\n", spec.Path, err)
		return execExitCode(err)
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			fmt.Fprintf(os.Stderr, "orca sandbox: wait for %s: %v\n", spec.Path, err)
			return 128
		case wpid != pid:
			continue // an orphan of the command
		case ws.Signaled():
			return 128 + int(ws.Signal())
		default:
			return ws.ExitStatus()
		}
	}
}
