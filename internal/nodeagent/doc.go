// Package nodeagent is the node agent of the sandbox cluster: it registers a Node
// with the API server and runs the Pods bound to that Node as processes on the
// local host, as a kubelet would run them in containers.
//
// The agent is built on virtual-kubelet's node/nodeutil package. It differs from a
// kubelet in these ways:
//
//   - Images are not pulled. Each container runs its command and args as a process
//     on this host, with the container's environment plus HOSTNAME, PATH and HOME
//     defaults, in its own process group and PID namespace (but the host's
//     /proc), so that no process outlives its container, not even when the agent
//     dies. A container without a command ends at once with exit code 128 and
//     reason NoCommand.
//   - The restart policy is treated as Never: init containers run one after the
//     other, then the regular containers run together, and no container restarts.
//     A Pod that an earlier agent started is not run again: its unfinished
//     containers end with reason ContainerStatusUnknown.
//   - When a Pod is deleted, its processes get SIGTERM and, after the grace
//     period (at most 10 seconds), SIGKILL; then the agent deletes the Pod
//     object. When the agent stops, it stops every Pod the same way (grace at
//     most 3 seconds) and leaves their objects as they are.
//   - Volumes, probes, resources, security contexts, lifecycle hooks and
//     activeDeadlineSeconds are ignored; all Pods share the host's network and
//     report 127.0.0.1 as their IP. The only file a container sees in place of
//     the host's is its termination message file: the agent bind-mounts a
//     per-container host file over terminationMessagePath in a private mount
//     namespace (see RunContainerIfChild), so unchanged commands that write
//     /dev/termination-log work and concurrent Pods do not see each other's
//     message.
//   - Container output goes to a log file under Options.Dir, which `kubectl logs`
//     reads through the agent's HTTPS server (tail, limitBytes and follow are
//     supported; timestamps and since are not). exec, attach and port-forward are
//     not supported. As the kubelet's, that server serves only a client whose
//     certificate Options.ClientCAs signed: kube-apiserver's kubelet client
//     certificate.
//
// A program that runs an Agent must call RunContainerIfChild first thing in main,
// and a test package that runs one must call it first thing in TestMain.
package nodeagent
