// Package sandbox runs a local Kubernetes cluster in one folder for `orca run
// --sandbox` and `make run`: etcd and kube-apiserver (through envtest), with
// Orca's CRDs installed, kube-controller-manager for garbage collection and
// namespaces, kube-scheduler, and a node agent (internal/nodeagent) that runs the
// Pods bound to its Node as processes on this host.
//
// The binaries are the cached ones of hack/control-plane.sh (internal/controlplane).
// Every start is clean: the folder is emptied first, and a process left by an
// earlier run is stopped. Stop stops every process it started; should the
// sandbox's process be killed instead, a guard process stops what would outlive
// it. A program that calls Start must call RunGuardIfChild first thing in main,
// and nodeagent.RunContainerIfChild too.
package sandbox
