// Package testenv starts a real Kubernetes control plane (etcd and kube-apiserver,
// optionally kube-controller-manager) for Orca's tests, with Orca's CRDs installed,
// and plays the kubelet for Pods that no node runs.
//
// The binaries come from hack/control-plane.sh, which builds them once into a cache
// folder outside the checkout; `make test` passes that folder in KUBEBUILDER_ASSETS.
package testenv
