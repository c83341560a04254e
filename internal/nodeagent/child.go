package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// childEnv marks a process that the agent started as a container: its value is the
// JSON of a childSpec. RunContainerIfChild removes it before running the command.
const childEnv = "ORCA_NODEAGENT_CONTAINER"

// childSpec tells a re-executed agent binary which command to run and which host
// file to mount over the container's termination message path.
type childSpec struct {
	// Path is the executable, already looked up in the container's PATH.
	Path string `json:"path"`
	// Argv is the command line, argv[0] included.
	Argv []string `json:"argv"`
	// TerminationFile is the per-container host file that receives the message.
	TerminationFile string `json:"terminationFile"`
	// TerminationPath is the container's terminationMessagePath.
	TerminationPath string `json:"terminationPath"`
}

// RunContainerIfChild runs a container's command when the agent started this
// process as a container; otherwise it returns at once. Call it first thing in
// main, and in TestMain of a test package that runs an Agent: the agent starts each
// container by re-executing its own binary (/proc/self/exe).
//
// In a container process it bind-mounts the container's host termination file over
// terminationMessagePath in the process's private mount namespace, then runs the
// command and never returns: as the only child of this process when this process
// is the init of a PID namespace (see superviseCommand), else by replacing this
// process with it. When the mount fails (no privilege), it writes one warning
// line to the container's log and runs the command anyway.
func RunContainerIfChild() {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	_ = os.Unsetenv(childEnv)
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil || len(spec.Argv) == 0 {
		fmt.Fprintf(os.Stderr, "orca sandbox: invalid container spec in %s: %v\n", childEnv, err)
		os.Exit(128)
	}
	if spec.TerminationPath != "" {
		if err := mountTerminationFile(spec.TerminationFile, spec.TerminationPath); err != nil {
			fmt.Fprintf(os.Stderr, "orca sandbox: warning: cannot give this container its own %s, so its termination message comes only from the log: %v\n", spec.TerminationPath, err)
		}
	}
	// The command runs without the capability that the mount needed. Capability
	// sets belong to threads: clear it on this thread and start the command from
	// it.
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if os.Getpid() == 1 {
		os.Exit(superviseCommand(spec))
	}
	err := syscall.Exec(spec.Path, spec.Argv, os.Environ())
	fmt.Fprintf(os.Stderr, "orca sandbox: run %s: %v\n", spec.Path, err)
	os.Exit(execExitCode(err))
}

// execExitCode returns the exit code of a command that could not be executed, as
// a shell reports it.
func execExitCode(err error) int {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return 127
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC):
		return 126
	}
	return 128
}

// mountTerminationFile bind-mounts source over target, creating target as an empty
// file when it is missing. It must run in a mount namespace of its own.
func mountTerminationFile(source, target string) error {
	// The mount must not propagate to the host. Go already makes / private when
	// it unshares the mount namespace; a namespace cloned with a user namespace
	// gets it here.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	info, err := os.Stat(target)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("create folder of %s: %w", target, err)
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create %s: %w", target, err)
		}
		_ = f.Close()
	case err != nil:
		return fmt.Errorf("stat %s: %w", target, err)
	case info.IsDir():
		return fmt.Errorf("%s is a folder", target)
	}
	if err := syscall.Mount(source, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s over %s: %w", source, target, err)
	}
	return nil
}
