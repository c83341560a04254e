package nodeagent

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// exitCodeNotRun is the exit code of a container whose process could not start.
const exitCodeNotRun = 128

// containerRun is one container of a podRun. Its state is guarded by the podRun's
// lock.
type containerRun struct {
	spec        corev1.Container
	init        bool
	logPath     string
	messagePath string        // host file mounted over terminationMessagePath
	feed        *logFeed      // tells log followers about new output
	copied      chan struct{} // closed once the output is in the log

	state     corev1.ContainerState
	id        string
	startedAt metav1.Time
}

func (r *podRun) newContainerRun(spec *corev1.Container, init bool) *containerRun {
	reason := "ContainerCreating"
	if init || len(r.pod.Spec.InitContainers) > 0 {
		reason = "PodInitializing"
	}
	return &containerRun{
		spec:        *spec.DeepCopy(),
		init:        init,
		logPath:     filepath.Join(r.dir, spec.Name+".log"),
		messagePath: filepath.Join(r.dir, spec.Name+".termination-log"),
		feed:        newLogFeed(),
		copied:      make(chan struct{}),
		state:       corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
	}
}

// start starts the container's process and marks it running. It returns nil when
// the Pod is stopping (the container stays waiting) or the process could not
// start (the container is terminated with exit code 128).
func (r *podRun) start(c *containerRun) *process {
	if r.isStopping() {
		return nil
	}
	if len(c.spec.Command) == 0 {
		return r.notStarted(c, "NoCommand", fmt.Sprintf(
			"the sandbox runs no images, so the image's entrypoint is unknown: set a command for container %q", c.spec.Name))
	}
	env := containerEnv(r.hostname, &c.spec)
	argv := commandLine(&c.spec)
	dir := r.workDir()
	if wd := c.spec.WorkingDir; wd != "" {
		if info, err := os.Stat(wd); err == nil && info.IsDir() {
			dir = wd
		}
	}
	pathEnv, _ := envValue(env, "PATH")
	path, err := lookPath(argv[0], pathEnv, dir)
	if err != nil {
		return r.notStarted(c, "StartError", err.Error())
	}
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return r.notStarted(c, "StartError", fmt.Sprintf("create log file: %v", err))
	}
	if err := os.WriteFile(c.messagePath, nil, 0o666); err != nil {
		_ = logFile.Close()
		return r.notStarted(c, "StartError", fmt.Sprintf("create termination message file: %v", err))
	}
	messagePath := c.spec.TerminationMessagePath
	if messagePath == "" {
		messagePath = corev1.TerminationMessagePathDefault
	}
	proc, err := startProcess(childSpec{Path: path, Argv: argv, TerminationFile: c.messagePath, TerminationPath: messagePath}, env, dir)
	if err != nil {
		_ = logFile.Close()
		return r.notStarted(c, "StartError", err.Error())
	}
	lines := newLineWriter(r.m.cfg.Output, r.key+"/"+c.spec.Name+": ")
	go func() {
		defer close(c.copied)
		copyOutput(proc.output, logFile, lines, c.feed)
	}()
	pid := proc.cmd.Process.Pid
	r.update(func() {
		c.id = fmt.Sprintf("orca-sandbox://%d", pid)
		c.startedAt = metav1.Now()
		c.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: c.startedAt}}
	})
	r.log.V(1).Info("container started", "container", c.spec.Name, "pid", pid)
	return proc
}

// notStarted terminates a container whose process could not start, writes why
// into its log and returns nil.
func (r *podRun) notStarted(c *containerRun, reason, message string) *process {
	line := "orca sandbox: " + message + "\n"
	if f, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		_, _ = f.WriteString(line)
		_ = f.Close()
	}
	lines := newLineWriter(r.m.cfg.Output, r.key+"/"+c.spec.Name+": ")
	_, _ = lines.Write([]byte(line))
	c.feed.end()
	close(c.copied)
	r.update(func() { c.terminate(exitCodeNotRun, reason, message) })
	r.log.Info("container not started", "container", c.spec.Name, "reason", reason, "message", message)
	return nil
}

// await waits for the container's process to end (stopping it when the Pod
// stops), for its output to reach the log, and marks the container terminated.
func (r *podRun) await(c *containerRun, proc *process) {
	code := proc.wait(r.stopCh, r.stopGrace)
	select {
	case <-c.copied:
	case <-time.After(outputDrainTimeout):
		_ = proc.output.Close()
		<-c.copied
	}
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	message := terminationMessage(&c.spec, c.messagePath, c.logPath, code)
	r.update(func() { c.terminate(code, reason, message) })
	r.log.Info("container ended", "container", c.spec.Name, "exitCode", code)
}

// terminate marks the container terminated now.
func (c *containerRun) terminate(code int, reason, message string) {
	now := metav1.Now()
	started := c.startedAt
	if started.IsZero() {
		started = now
	}
	c.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, Message: message,
		StartedAt: started, FinishedAt: now, ContainerID: c.id,
	}}
}

// succeeded tells whether the container ended with exit code 0.
func (r *podRun) succeeded(c *containerRun) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return c.succeededLocked()
}

// succeededLocked is succeeded with the podRun's lock held.
func (c *containerRun) succeededLocked() bool {
	return c.state.Terminated != nil && c.state.Terminated.ExitCode == 0
}

// status returns the container's status for the Pod.
func (c *containerRun) status() corev1.ContainerStatus {
	running := c.state.Running != nil
	ready := running
	if c.init {
		ready = c.succeededLocked()
	}
	return corev1.ContainerStatus{
		Name:        c.spec.Name,
		Image:       c.spec.Image,
		ContainerID: c.id,
		State:       *c.state.DeepCopy(),
		Ready:       ready,
		Started:     &running,
	}
}
