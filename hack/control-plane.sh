#!/usr/bin/env bash
# Builds the control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) from the Go module proxy into a cache folder outside the
# checkout, keyed by version, and prints that folder. Binaries already there are reused.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ORCA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/orca}
dir="$cache/controlplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$dir"

# One builder at a time: parallel `make` invocations wait for each other.
exec 9>"$dir/.lock"
flock 9

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean"
done

build() { # name dir package
	if [[ -x "$dir/$1" ]]; then return; fi
	echo "building $1 into $dir (first time only; kube-apiserver takes about 6 minutes)" >&2
	(cd "$root/test/tools/$2" && GOFLAGS=-mod=mod CGO_ENABLED=0 \
		go build -trimpath -ldflags "$ldflags" -o "$dir/$1.tmp" "$3")
	mv "$dir/$1.tmp" "$dir/$1"
}

build etcd etcd go.etcd.io/etcd/server/v3
build kube-apiserver kubernetes k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager kubernetes k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler kubernetes k8s.io/kubernetes/cmd/kube-scheduler
build kubectl kubernetes k8s.io/kubernetes/cmd/kubectl
echo "$dir"
