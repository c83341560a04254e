package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// typed converts an object to its Go type.
func typed[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	require.NotNil(t, o)
	out := new(T)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out))
	return out
}

// deployments returns the four services' Deployments, by service.
func deployments(t *testing.T, objs []*unstructured.Unstructured) map[string]*appsv1.Deployment {
	t.Helper()
	out := map[string]*appsv1.Deployment{}
	for _, svc := range services {
		o := find(objs, "Deployment", "orca-"+svc)
		require.NotNil(t, o, "Deployment orca-%s", svc)
		out[svc] = typed[appsv1.Deployment](t, o)
	}
	return out
}

// configMap returns the generated ConfigMap whose name starts with prefix-.
func configMap(t *testing.T, objs []*unstructured.Unstructured, prefix string) *corev1.ConfigMap {
	t.Helper()
	for _, o := range ofKind(objs, "ConfigMap") {
		if strings.HasPrefix(o.GetName(), prefix+"-") || o.GetName() == prefix {
			return typed[corev1.ConfigMap](t, o)
		}
	}
	return nil
}

func secret(t *testing.T, objs []*unstructured.Unstructured, prefix string) *corev1.Secret {
	t.Helper()
	for _, o := range ofKind(objs, "Secret") {
		if strings.HasPrefix(o.GetName(), prefix+"-") {
			return typed[corev1.Secret](t, o)
		}
	}
	return nil
}

// envOf returns a container's env by name.
func envOf(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// TestKustomizeRendersAndServerAcceptsEveryObject renders the base, every overlay
// and a combination of the overlays' components with kubectl kustomize, and has the
// API server accept every object with a server-side dry-run (after creating the
// namespaces they go to).
func TestKustomizeRendersAndServerAcceptsEveryObject(t *testing.T) {
	all := installs(t)
	for _, name := range sortedKeys(all) {
		t.Run(name, func(t *testing.T) {
			objs := objects(t, render(t, all[name]))
			applyForReal(t, ofKind(objs, "Namespace"))
			out, stderr, err := kubectl(t.Context(), toYAML(t, objs),
				"apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-")
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			assert.Len(t, lines, len(objs), "one line per object:\n%s", out)
			for _, l := range lines {
				assert.Contains(t, l, "(server dry run)")
			}
			// The base's namespace enforces "restricted": nothing of Orca's may
			// even be warned about.
			assert.NotContains(t, stderr, "PodSecurity", "warnings:\n%s", stderr)
		})
	}
}

// TestBaseInstallsTheServicesAsTheIssueAsks checks the base's objects one by one.
func TestBaseInstallsTheServicesAsTheIssueAsks(t *testing.T) {
	objs := objects(t, render(t, deployDir("base")))

	ns := find(objs, "Namespace", "orca-system")
	require.NotNil(t, ns, "namespace orca-system")
	assert.Equal(t, "restricted", ns.GetLabels()["pod-security.kubernetes.io/enforce"])
	for _, o := range objs {
		if clusterScoped(o) {
			assert.Empty(t, o.GetNamespace(), "%s %s is cluster-scoped", o.GetKind(), o.GetName())
		} else {
			assert.Equal(t, "orca-system", o.GetNamespace(), "%s %s", o.GetKind(), o.GetName())
		}
	}
	var crds []string
	for _, o := range ofKind(objs, "CustomResourceDefinition") {
		crds = append(crds, o.GetName())
	}
	assert.ElementsMatch(t, []string{"tasks.sirocco.cloud", "ignitors.sirocco.cloud", "actions.sirocco.cloud"}, crds)

	cfg := configMap(t, objs, "orca-config")
	require.NotNil(t, cfg, "ConfigMap orca-config")
	assert.Equal(t, "nats://orca-nats:4222", cfg.Data["ORCA_NATS_URL"])
	creds := secret(t, objs, "orca-nats-credentials")
	require.NotNil(t, creds, "Secret orca-nats-credentials")

	deps := deployments(t, objs)
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			d := deps[svc]
			pod := d.Spec.Template.Spec
			assert.Equal(t, "orca-"+svc, pod.ServiceAccountName)
			require.NotNil(t, find(objs, "ServiceAccount", "orca-"+svc))
			assert.Equal(t, int32(2), *d.Spec.Replicas)

			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]
			assert.Equal(t, []string{"/usr/local/bin/" + svc}, c.Command)
			assert.Equal(t, "ghcr.io/sirocco-cloud/orca:latest", c.Image)
			leader := svc == "scheduler" || svc == "watcher"
			assert.Equal(t, leader, slices.Contains(c.Args, "--leader-elect"), "--leader-elect only for scheduler and watcher: %v", c.Args)

			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			assert.Equal(t, map[string]int32{"metrics": 8080, "probes": 8081}, ports)
			for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz", c.StartupProbe: "/healthz"} {
				require.NotNil(t, probe)
				require.NotNil(t, probe.HTTPGet)
				assert.Equal(t, path, probe.HTTPGet.Path)
				assert.Equal(t, int32(8081), ports[probe.HTTPGet.Port.String()])
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				assert.Contains(t, c.Resources.Requests, r)
				assert.Contains(t, c.Resources.Limits, r)
			}

			// Pod Security Standard "restricted", spelled out.
			require.NotNil(t, pod.SecurityContext)
			assert.True(t, *pod.SecurityContext.RunAsNonRoot)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type)
			sc := c.SecurityContext
			require.NotNil(t, sc)
			assert.False(t, *sc.AllowPrivilegeEscalation)
			assert.True(t, *sc.ReadOnlyRootFilesystem)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)

			// Settings from the ConfigMap, credentials from the Secret.
			require.Len(t, c.EnvFrom, 1)
			assert.Equal(t, cfg.Name, c.EnvFrom[0].ConfigMapRef.Name)
			e := envOf(c)
			assert.Equal(t, "orca-"+svc, e["ORCA_NATS_USER"].Value)
			ref := e["ORCA_NATS_PASSWORD"].ValueFrom.SecretKeyRef
			require.NotNil(t, ref)
			assert.Equal(t, creds.Name, ref.Name)
			assert.Equal(t, "ORCA_"+strings.ToUpper(svc)+"_PASSWORD", ref.Key)
			assert.Contains(t, creds.Data, ref.Key)
			assert.Equal(t, "metadata.namespace", e["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath)

			// Every $(VAR) in the args is defined, or Kubernetes would pass it as is.
			defined := map[string]bool{}
			for k := range e {
				defined[k] = true
			}
			for k := range cfg.Data {
				defined[k] = true
			}
			for _, a := range c.Args {
				for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(a, -1) {
					assert.True(t, defined[m[1]], "%s uses $(%s), which is not set", a, m[1])
				}
			}

			// The binding gives the service account the generated ClusterRole.
			crb := typed[rbacv1.ClusterRoleBinding](t, find(objs, "ClusterRoleBinding", "orca-"+svc))
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "orca-" + svc}, crb.RoleRef)
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "orca-" + svc, Namespace: "orca-system"}}, crb.Subjects)
			cr := typed[rbacv1.ClusterRole](t, find(objs, "ClusterRole", "orca-"+svc))
			assert.Equal(t, generatedRules(t, svc), cr.Rules)
		})
	}

	// Leader election: a Role in orca-system for the two leader-elected services.
	rb := typed[rbacv1.RoleBinding](t, find(objs, "RoleBinding", "orca-leader-election"))
	assert.ElementsMatch(t, []rbacv1.Subject{
		{Kind: "ServiceAccount", Name: "orca-scheduler", Namespace: "orca-system"},
		{Kind: "ServiceAccount", Name: "orca-watcher", Namespace: "orca-system"},
	}, rb.Subjects)
	role := typed[rbacv1.Role](t, find(objs, "Role", rb.RoleRef.Name))
	assert.Equal(t, "orca-system", role.Namespace)
	assert.Equal(t, generatedRules(t, "leader-election"), role.Rules)
	// The actions service's rights on Secrets: a ClusterRole bound nowhere.
	reader := typed[rbacv1.ClusterRole](t, find(objs, "ClusterRole", "orca-actions-secret-reader"))
	assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}, reader.Rules)
	for _, o := range ofKind(objs, "ClusterRoleBinding", "RoleBinding") {
		assert.NotEqual(t, "orca-actions-secret-reader", typed[rbacv1.ClusterRoleBinding](t, o).RoleRef.Name, "%s %s", o.GetKind(), o.GetName())
	}
	// Who writes an Action must be able to read the Secrets it names.
	require.NotNil(t, find(objs, "ValidatingAdmissionPolicy", "orca-action-secrets"))
	require.NotNil(t, find(objs, "ValidatingAdmissionPolicyBinding", "orca-action-secrets"))

	// One metrics Service on port 8080 of all four.
	metrics := typed[corev1.Service](t, find(objs, "Service", "orca-metrics"))
	require.Len(t, metrics.Spec.Ports, 1)
	assert.Equal(t, int32(8080), metrics.Spec.Ports[0].Port)
	for svc, d := range deps {
		for k, v := range metrics.Spec.Selector {
			assert.Equal(t, v, d.Spec.Template.Labels[k], "orca-metrics selects %s", svc)
		}
	}

	// NATS: a StatefulSet with a volume claim template, its config and Service.
	sts := typed[appsv1.StatefulSet](t, find(objs, "StatefulSet", "orca-nats"))
	assert.Equal(t, int32(1), *sts.Spec.Replicas)
	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	assert.Equal(t, "data", sts.Spec.VolumeClaimTemplates[0].Name)
	natsCfg := configMap(t, objs, "orca-nats-config")
	require.NotNil(t, natsCfg)
	for _, f := range []string{"nats.conf", "auth.conf", "cluster.conf", "tls.conf"} {
		assert.Contains(t, natsCfg.Data, f)
	}
	var cfgVolume string
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			cfgVolume = v.ConfigMap.Name
		}
	}
	assert.Equal(t, natsCfg.Name, cfgVolume)
	nc := sts.Spec.Template.Spec.Containers[0]
	require.Len(t, nc.EnvFrom, 1)
	assert.Equal(t, creds.Name, nc.EnvFrom[0].SecretRef.Name, "the NATS server reads every password")
	svc := typed[corev1.Service](t, find(objs, "Service", "orca-nats"))
	assert.Equal(t, int32(4222), svc.Spec.Ports[0].Port)
	for k, v := range svc.Spec.Selector {
		assert.Equal(t, v, sts.Spec.Template.Labels[k])
	}
}

// clusterScoped reports whether an object of Orca's install is cluster-scoped.
func clusterScoped(o *unstructured.Unstructured) bool {
	switch o.GetKind() {
	case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
		return true
	}
	return false
}

// generatedRules returns the rules of the ClusterRole (or Role) that `make
// manifests` generated for a service (or for leader-election).
func generatedRules(t *testing.T, svc string) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(deployDir("rbac", svc, "role.yaml"))
	require.NoError(t, err)
	var cr rbacv1.ClusterRole
	require.NoError(t, yaml.Unmarshal(b, &cr))
	require.Equal(t, "orca-"+svc, cr.Name)
	return cr.Rules
}

// TestBaseRBACIsTheGeneratedRBAC keeps base/rbac/<service>-role.yaml equal to the
// ClusterRoles that `make manifests` generates; ORCA_UPDATE_DEPLOY=1 refreshes them.
func TestBaseRBACIsTheGeneratedRBAC(t *testing.T) {
	for _, svc := range append(slices.Clone(services), "leader-election") {
		generated, err := os.ReadFile(deployDir("rbac", svc, "role.yaml"))
		require.NoError(t, err)
		copyPath := deployDir("base", "rbac", svc+"-role.yaml")
		if os.Getenv("ORCA_UPDATE_DEPLOY") == "1" {
			require.NoError(t, os.WriteFile(copyPath, generated, 0o644))
		}
		copied, err := os.ReadFile(copyPath)
		require.NoError(t, err)
		assert.Equal(t, string(generated), string(copied),
			"%s differs from deploy/kustomize/rbac/%s/role.yaml: run ORCA_UPDATE_DEPLOY=1 go test ./test/deploy/ -run TestBaseRBACIsTheGeneratedRBAC", copyPath, svc)
	}
}

// TestOverlaysChangeWhatTheySay checks each overlay against the base.
func TestOverlaysChangeWhatTheySay(t *testing.T) {
	base := objects(t, render(t, deployDir("base")))

	t.Run("existing-nats", func(t *testing.T) {
		objs := objects(t, render(t, deployDir("overlays", "existing-nats")))
		assert.Empty(t, ofKind(objs, "StatefulSet"))
		assert.Nil(t, find(objs, "Service", "orca-nats"))
		assert.Nil(t, find(objs, "Service", "orca-nats-headless"))
		assert.Nil(t, find(objs, "ServiceAccount", "orca-nats"))
		assert.Nil(t, configMap(t, objs, "orca-nats-config"))
		url := configMap(t, objs, "orca-config").Data["ORCA_NATS_URL"]
		assert.NotEqual(t, configMap(t, base, "orca-config").Data["ORCA_NATS_URL"], url)
		assert.True(t, strings.HasPrefix(url, "nats://"), url)
		require.NotNil(t, secret(t, objs, "orca-nats-credentials"), "the services still need their passwords")
		assert.Len(t, deployments(t, objs), 4)
		assert.Len(t, objs, len(base)-5)
	})

	t.Run("nats-cluster", func(t *testing.T) {
		objs := objects(t, render(t, deployDir("overlays", "nats-cluster")))
		sts := typed[appsv1.StatefulSet](t, find(objs, "StatefulSet", "orca-nats"))
		assert.Equal(t, int32(3), *sts.Spec.Replicas)
		e := envOf(sts.Spec.Template.Spec.Containers[0])
		assert.Contains(t, e, "POD_NAME", "the base's env is kept")
		assert.Contains(t, e["ORCA_NATS_ROUTES"].Value, "orca-nats-2.orca-nats-headless:6222")
		assert.Contains(t, secret(t, objs, "orca-nats-credentials").Data, "ORCA_NATS_ROUTE_PASSWORD")
		assert.Contains(t, configMap(t, objs, "orca-nats-config").Data["cluster.conf"], "cluster {")
		for svc, d := range deployments(t, objs) {
			assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--stream-replicas=3", svc)
		}
		pdb := typed[policyv1.PodDisruptionBudget](t, find(objs, "PodDisruptionBudget", "orca-nats"))
		assert.Equal(t, sts.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels)
	})

	t.Run("nats-tls", func(t *testing.T) {
		objs := objects(t, render(t, deployDir("overlays", "nats-tls")))
		assert.Equal(t, "tls://orca-nats:4222", configMap(t, objs, "orca-config").Data["ORCA_NATS_URL"])
		assert.Contains(t, configMap(t, objs, "orca-nats-config").Data["tls.conf"], "tls {")
		for svc, d := range deployments(t, objs) {
			c := d.Spec.Template.Spec.Containers[0]
			assert.Contains(t, c.Args, "--nats-tls-ca-file=/etc/orca/nats-tls/ca.crt", svc)
			var mounted bool
			for _, m := range c.VolumeMounts {
				mounted = mounted || m.MountPath == "/etc/orca/nats-tls"
			}
			assert.True(t, mounted, svc)
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Secret != nil {
					assert.Equal(t, []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}, v.Secret.Items, "%s sees only the CA", svc)
				}
			}
		}
		sts := typed[appsv1.StatefulSet](t, find(objs, "StatefulSet", "orca-nats"))
		var secretVol bool
		for _, v := range sts.Spec.Template.Spec.Volumes {
			secretVol = secretVol || (v.Secret != nil && v.Secret.SecretName == "orca-nats-tls")
		}
		assert.True(t, secretVol)
	})

	t.Run("namespaced", func(t *testing.T) {
		objs := objects(t, render(t, deployDir("overlays", "namespaced")))
		assert.Empty(t, ofKind(objs, "ClusterRoleBinding"))
		require.Len(t, ofKind(objs, "ClusterRole"), 1)
		assert.Equal(t, "orca-actions-secret-reader", ofKind(objs, "ClusterRole")[0].GetName(), "bound by the namespace's owner, if at all")
		assert.Len(t, ofKind(objs, "CustomResourceDefinition"), 3, "the CRDs stay, cluster-scoped")
		ns := find(objs, "Namespace", namespacedNS)
		require.NotNil(t, ns)
		assert.Empty(t, ns.GetLabels()["pod-security.kubernetes.io/enforce"], "Tasks run in this namespace")
		for _, o := range objs {
			switch {
			case clusterScoped(o):
				assert.Equal(t, "cluster", o.GetLabels()["orca.sirocco.cloud/scope"], "%s %s", o.GetKind(), o.GetName())
				assert.Empty(t, o.GetNamespace(), "%s %s", o.GetKind(), o.GetName())
			default:
				assert.Equal(t, namespacedNS, o.GetNamespace(), "%s %s", o.GetKind(), o.GetName())
				assert.Empty(t, o.GetLabels()["orca.sirocco.cloud/scope"], "%s %s", o.GetKind(), o.GetName())
			}
		}
		for _, svc := range services {
			role := typed[rbacv1.Role](t, find(objs, "Role", "orca-"+svc))
			assert.Equal(t, generatedRules(t, svc), role.Rules)
			rb := typed[rbacv1.RoleBinding](t, find(objs, "RoleBinding", "orca-"+svc))
			assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "orca-" + svc}, rb.RoleRef)
			assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "orca-" + svc, Namespace: namespacedNS}}, rb.Subjects)
		}
		for svc, d := range deployments(t, objs) {
			c := d.Spec.Template.Spec.Containers[0]
			assert.Contains(t, c.Args, "--namespaces=$(POD_NAMESPACE)", svc)
			assert.Equal(t, "metadata.namespace", envOf(c)["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath)
		}
	})
}

// namespacedNS is the namespace of overlays/namespaced.
const namespacedNS = "orca-workflows"

// TestDeploymentsRunBinariesTheImageHas ties the Deployments' commands to the image.
func TestDeploymentsRunBinariesTheImageHas(t *testing.T) {
	built := dockerfileBinaries(t)
	for _, name := range sortedKeys(installs(t)) {
		for svc, d := range deployments(t, objects(t, render(t, installs(t)[name]))) {
			cmd := d.Spec.Template.Spec.Containers[0].Command
			require.NotEmpty(t, cmd)
			assert.Contains(t, built, cmd[0], "%s: %s runs %s", name, svc, cmd[0])
		}
	}
}
