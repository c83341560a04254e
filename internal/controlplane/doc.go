// Package controlplane finds the Kubernetes control-plane binaries that
// hack/control-plane.sh builds once into a cache folder keyed by version (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), and runs the
// ones envtest does not start as child processes that die with their parent.
package controlplane
