package deploy_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// warnings collects the API server's warnings.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// restrictedNamespace creates a namespace that enforces the "restricted" Pod
// Security Standard.
func restrictedNamespace(t *testing.T) string {
	t.Helper()
	name := env.Namespace(t)
	var ns corev1.Namespace
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Name: name}, &ns))
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	ns.Labels["pod-security.kubernetes.io/enforce-version"] = "latest"
	ns.Labels["pod-security.kubernetes.io/warn"] = "restricted"
	require.NoError(t, env.Client.Update(t.Context(), &ns))
	return name
}

// podOf returns the Pod that a workload's controller would create from template.
func podOf(ns, name string, template corev1.PodTemplateSpec, claims []corev1.PersistentVolumeClaim) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Namespace: ns, Labels: template.Labels, Annotations: template.Annotations},
		Spec:       *template.Spec.DeepCopy(),
	}
	for _, c := range claims {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         c.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name + "-" + name + "-0"}},
		})
	}
	return pod
}

// TestPodTemplatesPassRestrictedPodSecurity creates (dry-run) a Pod from every Pod
// template of the base and the overlays in a namespace that enforces "restricted":
// PodSecurity admission rejects a Pod that breaks it. The workloads themselves are
// only warned about, so their dry-run must bring no PodSecurity warning.
func TestPodTemplatesPassRestrictedPodSecurity(t *testing.T) {
	ns := restrictedNamespace(t)
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)

	// The namespace does enforce: a plain Pod is rejected.
	plain := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "plain-", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	err = c.Create(t.Context(), plain, client.DryRunAll)
	require.Error(t, err)
	require.Contains(t, err.Error(), "violates PodSecurity")

	all := installs(t)
	for _, name := range sortedKeys(all) {
		t.Run(name, func(t *testing.T) {
			objs := objects(t, render(t, all[name]))
			workloads := ofKind(objs, "Deployment", "StatefulSet")
			require.GreaterOrEqual(t, len(workloads), 4)
			for _, o := range workloads {
				var template corev1.PodTemplateSpec
				var claims []corev1.PersistentVolumeClaim
				var workload client.Object
				switch o.GetKind() {
				case "Deployment":
					d := typed[appsv1.Deployment](t, o)
					template, workload = d.Spec.Template, d
				case "StatefulSet":
					s := typed[appsv1.StatefulSet](t, o)
					template, claims, workload = s.Spec.Template, s.Spec.VolumeClaimTemplates, s
				}

				pod := podOf(ns, o.GetName(), template, claims)
				w.take()
				assert.NoError(t, c.Create(t.Context(), pod, client.DryRunAll), "Pod of %s %s", o.GetKind(), o.GetName())
				assert.Empty(t, w.take(), "Pod of %s %s", o.GetKind(), o.GetName())

				workload.SetNamespace(ns)
				assert.NoError(t, c.Create(t.Context(), workload, client.DryRunAll), "%s %s", o.GetKind(), o.GetName())
				for _, warning := range w.take() {
					assert.NotContains(t, strings.ToLower(warning), "podsecurity", "%s %s", o.GetKind(), o.GetName())
				}
			}
		})
	}
}
