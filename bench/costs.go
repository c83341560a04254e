package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
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
func costCase(ctx context.Context, c *cluster, n int, r *report) error {
	if err := c.namespace(ctx, costsNS); err != nil {
		return err
	}
	tk := task(costsNS, "cost", []string{"never"}, nil)
	if err := c.cl.Create(ctx, tk); err != nil {
		return err
	}
	pods := make([]*corev1.Pod, 2*n)
	name := func(i int) string { return fmt.Sprintf("cost-%04d", i) }
	status := func(i int) orcav1.TaskStatus {
		at := metav1.NewTime(time.Now().Truncate(time.Second))
		st := orcav1.TaskStatus{State: orcav1.TaskPending, LastSuccess: &at, ObservedGeneration: 1}
		for j := range 10 { // a full history, as a Task that ran has
			st.History = append(st.History, orcav1.RunRecord{Pod: name(i + j), Run: fmt.Sprintf("run-%d", i+j), Succeeded: true, FinishedAt: at})
		}
		return st
	}
	kinds := []struct {
		name      string
		do        func(i int) error
		uncounted bool // a step that prepares the next one
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
		name:      "POST pods (more Pods, to let go with a JSON patch)",
		uncounted: true,
		do: func(i int) error {
			p := floorPod(costsNS, name(n+i), true)
			p.Finalizers = []string{orcav1.FinalizerCompletion}
			var err error
			pods[n+i], err = c.cs.CoreV1().Pods(costsNS).Create(ctx, p, metav1.CreateOptions{})
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
		name: "PATCH pods (finalizer removed, JSON patch)",
		do: func(i int) error {
			body := fmt.Sprintf(`[{"op":"test","path":"/metadata/finalizers/0","value":%q},{"op":"remove","path":"/metadata/finalizers/0"}]`,
				orcav1.FinalizerCompletion)
			_, err := c.cs.CoreV1().Pods(costsNS).Patch(ctx, name(n+i), types.JSONPatchType, []byte(body), metav1.PatchOptions{})
			return err
		},
	}, {
		name: "PUT tasks/status (the whole Task)",
		do: func(i int) error {
			if i == 0 { // the watcher wrote the status of the new Task
				if err := c.cl.Get(ctx, client.ObjectKeyFromObject(tk), tk); err != nil {
					return err
				}
			}
			tk.Status = status(i) // tk has the resourceVersion of the last write
			return c.cl.Status().Update(ctx, tk)
		},
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
	for _, k := range kinds {
		time.Sleep(time.Second) // what came before settles
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
		if k.uncounted {
			continue
		}
		l := summarize(lat)
		r.note("cost of one %s: kube-apiserver %.2f ms CPU, etcd %.2f ms CPU, latency p50 %.2f ms (%d in a row)",
			k.name, 1000*used["kube-apiserver"]/float64(n), 1000*used["etcd"]/float64(n), l.P50, n)
		fmt.Fprintf(stderr, "  cost of one %s: kube-apiserver %.2f ms, etcd %.2f ms CPU, p50 %.2f ms\n", k.name,
			1000*used["kube-apiserver"]/float64(n), 1000*used["etcd"]/float64(n), l.P50)
	}
	return c.cs.CoreV1().Pods(costsNS).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
}
