package deploy_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// budgetsOf returns the PodDisruptionBudgets that select Pods with these labels.
func budgetsOf(t *testing.T, objs []*unstructured.Unstructured, podLabels map[string]string) []*policyv1.PodDisruptionBudget {
	t.Helper()
	var out []*policyv1.PodDisruptionBudget
	for _, o := range ofKind(objs, "PodDisruptionBudget") {
		pdb := typed[policyv1.PodDisruptionBudget](t, o)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		require.NoError(t, err)
		if !sel.Empty() && sel.Matches(labels.Set(podLabels)) {
			out = append(out, pdb)
		}
	}
	return out
}

// disruptionsAllowed is how many of replicas healthy Pods a budget lets a drain
// evict at once.
func disruptionsAllowed(t *testing.T, pdb *policyv1.PodDisruptionBudget, replicas int32) int32 {
	t.Helper()
	value := func(v *intstr.IntOrString) int32 {
		n, err := intstr.GetScaledValueFromIntOrPercent(v, int(replicas), true)
		require.NoError(t, err)
		return int32(n)
	}
	switch {
	case pdb.Spec.MinAvailable != nil:
		return replicas - value(pdb.Spec.MinAvailable)
	case pdb.Spec.MaxUnavailable != nil:
		return value(pdb.Spec.MaxUnavailable)
	}
	t.Fatalf("budget %s sets neither minAvailable nor maxUnavailable", pdb.Name)
	return 0
}

// spreadOver says whether the scheduler keeps the Pods with these labels in
// different domains of topologyKey when it can: preferred anti-affinity among
// them, or a topology spread with a skew of one.
func spreadOver(spec corev1.PodSpec, podLabels map[string]string, topologyKey string) bool {
	selects := func(s *metav1.LabelSelector, keys []string) bool {
		sel, err := metav1.LabelSelectorAsSelector(s)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(podLabels)) {
			return false
		}
		// matchLabelKeys narrows the selector to the Pod's own values: fine.
		for _, k := range keys {
			if _, ok := podLabels[k]; !ok {
				return false
			}
		}
		return true
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if w.PodAffinityTerm.TopologyKey == topologyKey && selects(w.PodAffinityTerm.LabelSelector, w.PodAffinityTerm.MatchLabelKeys) {
				return true
			}
		}
	}
	for _, c := range spec.TopologySpreadConstraints {
		if c.TopologyKey == topologyKey && c.MaxSkew == 1 && selects(c.LabelSelector, c.MatchLabelKeys) {
			return true
		}
	}
	return false
}

// TestEveryInstallRunsEachServiceReplicatedAndSpread checks the base and every
// overlay: each service runs two replicas, a budget lets a drain take one of
// them at a time and never both, and the scheduler spreads them over nodes and
// zones when it can (a one-node cluster still runs both). With three NATS
// servers, the stream is R3 and a drain keeps a quorum of two.
func TestEveryInstallRunsEachServiceReplicatedAndSpread(t *testing.T) {
	for _, name := range sortedKeys(installs(t)) {
		t.Run(name, func(t *testing.T) {
			objs := objects(t, render(t, installs(t)[name]))
			deps := deployments(t, objs)
			for _, svc := range services {
				d := deps[svc]
				pod := d.Spec.Template
				require.NotNil(t, d.Spec.Replicas)
				assert.GreaterOrEqual(t, *d.Spec.Replicas, int32(2), "%s replicas", svc)
				budgets := budgetsOf(t, objs, pod.Labels)
				require.Len(t, budgets, 1, "one PodDisruptionBudget selects the pods of %s", svc)
				pdb := budgets[0]
				assert.Equal(t, d.Namespace, pdb.Namespace, "%s", svc)
				allowed := disruptionsAllowed(t, pdb, *d.Spec.Replicas)
				assert.Equal(t, int32(1), allowed, "a drain evicts one %s at a time, never all", svc)
				for other, od := range deps {
					if other != svc {
						assert.NotContains(t, budgetsOf(t, objs, od.Spec.Template.Labels), pdb, "budget of %s selects pods of %s", svc, other)
					}
				}
				assert.True(t, spreadOver(pod.Spec, pod.Labels, corev1.LabelHostname), "%s spread over nodes", svc)
				assert.True(t, spreadOver(pod.Spec, pod.Labels, corev1.LabelTopologyZone), "%s spread over zones", svc)
				assert.Nil(t, d.Spec.Strategy.RollingUpdate, "%s: the default rollout starts a new replica, waits until it is ready, then stops an old one", svc)
			}

			sts := find(objs, "StatefulSet", "orca-nats")
			if sts == nil {
				return // an existing NATS: its operator's business
			}
			nats := typed[appsv1.StatefulSet](t, sts)
			if *nats.Spec.Replicas < 3 {
				return
			}
			for svc, d := range deps {
				assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, fmt.Sprintf("--stream-replicas=%d", *nats.Spec.Replicas),
					"%s creates the stream with a replica per NATS server (its consumers follow)", svc)
			}
			budgets := budgetsOf(t, objs, nats.Spec.Template.Labels)
			require.Len(t, budgets, 1, "one PodDisruptionBudget selects the NATS servers")
			assert.Equal(t, int32(1), disruptionsAllowed(t, budgets[0], *nats.Spec.Replicas), "a drain keeps a quorum of NATS servers")
			assert.True(t, spreadOver(nats.Spec.Template.Spec, nats.Spec.Template.Labels, corev1.LabelHostname), "NATS servers spread over nodes")
		})
	}
}
