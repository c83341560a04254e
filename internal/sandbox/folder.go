package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

const lockName = ".lock"

// prepare takes the folder's lock, stops what an earlier run that was killed left
// running, and empties the folder. The returned function releases the lock.
func prepare(dir string, log *slog.Logger) (unlock func(), err error) {
	if dir == "" {
		return nil, errors.New("no sandbox folder")
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the sandbox folder: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the sandbox lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("another sandbox runs in %s: stop it first (Ctrl-C), or pick another --state-dir", dir)
	}
	unlock = func() { _ = lock.Close() }
	for _, pid := range leftovers(dir) {
		log.Info("stopping a process of an earlier sandbox", "pid", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 10*time.Second)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("read the sandbox folder: %w", err)
	}
	for _, e := range entries {
		if e.Name() == lockName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			unlock()
			return nil, fmt.Errorf("empty the sandbox folder: %w", err)
		}
	}
	return unlock, nil
}

// leftovers returns the processes whose command line names a path in dir: the
// etcd, kube-apiserver and controllers of an earlier run.
func leftovers(dir string) []int { return ProcessesNaming(dir + string(filepath.Separator)) }

// ProcessesNaming returns the processes, other than this one, whose command line
// contains s.
func ProcessesNaming(s string) []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitGone(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
