package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
)

// Versions of the control plane that hack/control-plane.sh builds.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.3"
)

// AssetsDir returns the folder of the control-plane binaries: KUBEBUILDER_ASSETS
// when set, else the cache folder that hack/control-plane.sh fills
// ($ORCA_CACHE_DIR, else the user cache folder, /orca/controlplane/k8s-...-etcd-...).
// It fails with what to run when a binary is missing.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		cache := os.Getenv("ORCA_CACHE_DIR")
		if cache == "" {
			userCache, err := os.UserCacheDir()
			if err != nil {
				return "", fmt.Errorf("find cache folder: %w", err)
			}
			cache = filepath.Join(userCache, "orca")
		}
		dir = filepath.Join(cache, "controlplane", "k8s-"+KubernetesVersion+"-etcd-"+EtcdVersion)
	}
	return dir, CheckAssets(dir, "etcd", "kube-apiserver", "kubectl")
}

// CheckAssets says which of the binaries are missing in dir, and how to build them.
func CheckAssets(dir string, bins ...string) error {
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("control-plane binary %s missing in %s: run `make control-plane` (or `make test`, which builds it)", bin, dir)
		}
	}
	return nil
}
