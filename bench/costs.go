package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// costsNS holds the objects of the cost case.
const costsNS = "costs"

// costCase measures what one request of each kind that a run makes costs the
// control plane: kube-apiserver's and etcd's CPU time per request, and its
// latency, with n requests of a kind one after the other while nothing else
// runs. The watches open at the time (the observer, the services' informers,
// kube-controller-manager) are part of the cost: each write is sent to them.
func costCase(ctx context.Context, c *cluster, n int, profileDir string, r *report) error {
	if err := c.namespace(ctx, costsNS); err != nil {
		return err
	}
	tk := task(costsNS, "cost", []string{"never"}, nil)
	big := task(costsNS, "cost-big", []string{"never"}, nil)
	big.Spec.Template = bigTemplate()
	for _, t := range []*orcav1.Task{tk, big} {
		if err := c.cl.Create(ctx, t); err != nil {
			return err
		}
	}
	pods := make([]*corev1.Pod, n)
	name := func(i int) string { return fmt.Sprintf("cost-%04d", i) }
	status := func(i int) orcav1.TaskStatus {
		at := metav1.NewTime(time.Now().Truncate(time.Second))
		st := orcav1.TaskStatus{State: orcav1.TaskPending, LastSuccess: &at, ObservedGeneration: 1}
		for j := range 10 { // a full history, as a Task that ran has
			st.History = append(st.History, orcav1.RunRecord{Pod: name(i + j), Succeeded: true, FinishedAt: at,
				Run: fmt.Sprintf("%08x-7193-4569-adbd-8630993c3bcc", i+j)})
		}
		return st
	}
	// put writes st as the status of t, which has the resourceVersion of the
	// last write (the first is read: the watcher wrote the new Task's status).
	put := func(t *orcav1.Task, i int, st orcav1.TaskStatus) error {
		if i == 0 {
			if err := c.cl.Get(ctx, client.ObjectKeyFromObject(t), t); err != nil {
				return err
			}
		}
		t.Status = st
		return c.cl.Status().Update(ctx, t)
	}
	kinds := []struct {
		name string
		do   func(i int) error
	}{{
		name: "POST pods (a Pod create)",
		do: func(i int) error {
			p := floorPod(costsNS, name(i), true)
			p.Finalizers = []string{orcav1.FinalizerCompletion}
			var err error
			pods[i], err = c.cs.CoreV1().Pods(costsNS).Create(ctx, p, metav1.CreateOptions{})
			return err
		},
	}, {
		name: "PATCH pods/status (the kubelet ends a Pod)",
		do: func(i int) error {
			_, err := c.endPod(ctx, pods[i], "42")
			return err
		},
	}, {
		name: "PATCH pods (finalizer removed, strategic merge patch)",
		do: func(i int) error {
			body := fmt.Sprintf(`{"metadata":{"uid":%q,"$deleteFromPrimitiveList/finalizers":[%q]}}`, pods[i].UID, orcav1.FinalizerCompletion)
			_, err := c.cs.CoreV1().Pods(costsNS).Patch(ctx, name(i), types.StrategicMergePatchType, []byte(body), metav1.PatchOptions{})
			return err
		},
	}, {
		name: "PUT tasks/status (the whole Task)",
		do:   func(i int) error { return put(tk, i, status(i)) },
	}, {
		name: "PUT tasks/status, no history (state, times, count)",
		do: func(i int) error {
			st := status(i)
			st.History = nil
			return put(tk, i, st)
		},
	}, {
		name: "PUT tasks/status of a Task whose template has 3 containers (4 KB)",
		do:   func(i int) error { return put(big, i, status(i)) },
	}, {
		name: "PATCH tasks/status (merge patch of the status)",
		do: func(i int) error {
			body, err := json.Marshal(map[string]any{"status": status(i)})
			if err != nil {
				return err
			}
			return c.cl.Status().Patch(ctx, tk, client.RawPatch(types.MergePatchType, body))
		},
	}}
	for i, k := range kinds {
		time.Sleep(time.Second) // what came before settles
		// With -profile-dir, a CPU profile of kube-apiserver for each kind, over
		// the first second of its requests.
		wait := c.profileAPIServer(ctx, profilePath(profileDir, fmt.Sprintf("apiserver-cost-%d.pprof", i)), 1)
		before := cpu()
		var lat []float64
		for i := range n {
			t0 := time.Now()
			if err := k.do(i); err != nil {
				return fmt.Errorf("cost of %s: %w", k.name, err)
			}
			lat = append(lat, ms(time.Since(t0)))
		}
		used := cpu().since(before)
		if err := wait(); err != nil {
			return err
		}
		l := summarize(lat)
		r.note("cost of one %s: kube-apiserver %.2f ms CPU, etcd %.2f ms CPU, latency p50 %.2f ms (%d in a row)",
			k.name, 1000*used["kube-apiserver"]/float64(n), 1000*used["etcd"]/float64(n), l.P50, n)
		fmt.Fprintf(stderr, "  cost of one %s: kube-apiserver %.2f ms, etcd %.2f ms CPU, p50 %.2f ms\n", k.name,
			1000*used["kube-apiserver"]/float64(n), 1000*used["etcd"]/float64(n), l.P50)
	}
	return c.cs.CoreV1().Pods(costsNS).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
}

// bigTemplate is a Pod template as users write them: three containers with
// environment, resources, probes and volumes, about 4 KB of JSON.
func bigTemplate() corev1.PodTemplateSpec {
	t := podTemplate(map[string]string{"app": "report", "team": "data"})
	t.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "report-config"}}}}}
	var ctrs []corev1.Container
	for i, name := range []string{"fetch", "transform", "upload"} {
		ctr := corev1.Container{
			Name: name, Image: "registry.example.com/data/" + name + ":v1.4.2",
			Command: []string{"/bin/" + name, "--input=/work/in", "--output=/work/out", "--log-format=json"},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}, {Name: "config", MountPath: "/etc/report", ReadOnly: true}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/ready"}}},
				PeriodSeconds: 5},
		}
		for j := range 6 {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d_%d", i, j), Value: fmt.Sprintf("value-%d-%d-of-the-report", i, j)})
		}
		ctrs = append(ctrs, ctr)
	}
	t.Spec.Containers = ctrs
	return t
}

// profilePath is dir/name, or "" (no profile) when dir is "".
func profilePath(dir, name string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, name)
}
