package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// asServiceAccount returns a client that impersonates a ServiceAccount.
func asServiceAccount(t *testing.T, namespace, name string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + name}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	return c
}

// applyRBAC applies an install's Namespaces, ServiceAccounts and RBAC for real.
func applyRBAC(t *testing.T, dir string) {
	t.Helper()
	objs := objects(t, render(t, dir))
	applyForReal(t, ofKind(objs, "Namespace"))
	applyForReal(t, ofKind(objs, "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"))
}

// fixtures are what the services work on, in one namespace, made by the admin.
type fixtures struct {
	ns      string
	task    *orcav1.Task
	ignitor *orcav1.Ignitor
	action  *orcav1.Action
	pod     *corev1.Pod
	secret  *corev1.Secret
}

func newFixtures(t *testing.T, ns string) *fixtures {
	t.Helper()
	ctx := t.Context()
	f := &fixtures{ns: ns}
	podSpec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
	f.task = &orcav1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "task1", Namespace: ns},
		Spec:       orcav1.TaskSpec{StartOnIgnition: []orcav1.ObjectName{"ignitor1"}, Template: corev1.PodTemplateSpec{Spec: podSpec}},
	}
	f.ignitor = &orcav1.Ignitor{
		ObjectMeta: metav1.ObjectMeta{Name: "ignitor1", Namespace: ns},
		Spec:       orcav1.IgnitorSpec{Scheduled: "@hourly"},
	}
	f.action = &orcav1.Action{
		ObjectMeta: metav1.ObjectMeta{Name: "notify", Namespace: ns},
		Spec:       orcav1.ActionSpec{Log: &orcav1.LogAction{}},
	}
	f.pod = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "task1-run", Namespace: ns, Labels: map[string]string{orcav1.LabelTask: "task1"}},
		Spec:       podSpec,
	}
	f.secret = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hook-secret", Namespace: ns},
		StringData: map[string]string{"token": "s3cret"},
	}
	for _, o := range []client.Object{f.task, f.ignitor, f.action, f.pod, f.secret} {
		require.NoError(t, env.Client.Create(ctx, o))
	}
	return f
}

// allowed and forbidden check the outcome of a real call.
func allowed(t *testing.T, what string, err error) {
	t.Helper()
	assert.NoError(t, err, "%s should be allowed", what)
}

func forbidden(t *testing.T, what string, err error) {
	t.Helper()
	assert.True(t, apierrors.IsForbidden(err), "%s should be forbidden, got %v", what, err)
}

func newPod(ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "rbac-", Namespace: ns},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func newEvent(ns string, regarding client.Object) *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: "rbac-", Namespace: ns},
		EventTime:           metav1.NewMicroTime(time.Now()),
		ReportingController: "sirocco.cloud/orca", ReportingInstance: "test",
		Action: "Test", Reason: "Test", Type: corev1.EventTypeNormal,
		Regarding: corev1.ObjectReference{Kind: "Task", Namespace: ns, Name: regarding.GetName(), APIVersion: orcav1.GroupVersion.String()},
	}
}

func newLease(ns, name string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("test")},
	}
}

// coreEvent is the kind of Event that leader election records.
func coreEvent(ns string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "rbac-", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Lease", Namespace: ns, Name: "orca-scheduler", APIVersion: "coordination.k8s.io/v1"},
		Reason:         "LeaderElection", Message: "test", Type: corev1.EventTypeNormal,
	}
}

// TestServiceAccountsMayDoWhatTheServicesDoAndNoMore applies the base's RBAC for
// real and acts as each service's ServiceAccount: the calls the service makes
// succeed, and calls it has no business making are forbidden.
func TestServiceAccountsMayDoWhatTheServicesDoAndNoMore(t *testing.T) {
	applyRBAC(t, deployDir("base"))
	f := newFixtures(t, env.Namespace(t))
	ctx := t.Context()
	const system = "orca-system"

	t.Run("scheduler", func(t *testing.T) {
		c := asServiceAccount(t, system, "orca-scheduler")
		allowed(t, "list ignitors in all namespaces", c.List(ctx, &orcav1.IgnitorList{}))
		ig := &orcav1.Ignitor{}
		allowed(t, "get an ignitor", c.Get(ctx, client.ObjectKeyFromObject(f.ignitor), ig))
		ig.Status.LastFired = &metav1.Time{Time: time.Now().Truncate(time.Second)}
		allowed(t, "update ignitors/status", c.Status().Update(ctx, ig))
		allowed(t, "record an event", c.Create(ctx, newEvent(f.ns, f.ignitor)))
		allowed(t, "create its leader election lease", c.Create(ctx, newLease(system, "orca-scheduler-rbac-test")))
		allowed(t, "record leader election events", c.Create(ctx, coreEvent(system)))

		forbidden(t, "create a Pod", c.Create(ctx, newPod(f.ns)))
		forbidden(t, "list leases in all namespaces", c.List(ctx, &coordinationv1.LeaseList{}))
		ig.Spec.Description = "changed"
		forbidden(t, "update an ignitor's spec", c.Update(ctx, ig))
		forbidden(t, "list tasks", c.List(ctx, &orcav1.TaskList{}))
		forbidden(t, "get a secret", c.Get(ctx, client.ObjectKeyFromObject(f.secret), &corev1.Secret{}))
	})

	t.Run("dispatcher", func(t *testing.T) {
		c := asServiceAccount(t, system, "orca-dispatcher")
		allowed(t, "create a Pod", c.Create(ctx, newPod(f.ns)))
		allowed(t, "list tasks in all namespaces", c.List(ctx, &orcav1.TaskList{}))
		task := &orcav1.Task{}
		allowed(t, "get a task", c.Get(ctx, client.ObjectKeyFromObject(f.task), task))
		task.Status.State = orcav1.TaskRunning
		allowed(t, "update tasks/status", c.Status().Update(ctx, task))
		allowed(t, "record an event", c.Create(ctx, newEvent(f.ns, f.task)))
		// Slot repair reads the Pod that holds a limited Task's slot.
		allowed(t, "get a Pod", c.Get(ctx, client.ObjectKeyFromObject(f.pod), &corev1.Pod{}))

		forbidden(t, "delete a Pod", c.Delete(ctx, f.pod))
		forbidden(t, "delete its own Pods", c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(f.ns)))
		forbidden(t, "list Pods", c.List(ctx, &corev1.PodList{}))
		forbidden(t, "get a secret", c.Get(ctx, client.ObjectKeyFromObject(f.secret), &corev1.Secret{}))
		forbidden(t, "list secrets", c.List(ctx, &corev1.SecretList{}))
		forbidden(t, "create an ignitor", c.Create(ctx, &orcav1.Ignitor{
			ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: f.ns}, Spec: orcav1.IgnitorSpec{Scheduled: "NOW"}}))
		forbidden(t, "create a lease", c.Create(ctx, newLease(system, "orca-dispatcher-rbac-test")))
	})

	t.Run("watcher", func(t *testing.T) {
		c := asServiceAccount(t, system, "orca-watcher")
		allowed(t, "list Pods in all namespaces", c.List(ctx, &corev1.PodList{}))
		pod := &corev1.Pod{}
		allowed(t, "get a Pod", c.Get(ctx, client.ObjectKeyFromObject(f.pod), pod))
		patch := client.MergeFrom(pod.DeepCopy())
		pod.Finalizers = append(pod.Finalizers, "orca.sirocco.cloud/completion")
		allowed(t, "patch a Pod", c.Patch(ctx, pod, patch))
		task := &orcav1.Task{}
		allowed(t, "get a task", c.Get(ctx, client.ObjectKeyFromObject(f.task), task))
		task.Status.LastSuccess = &metav1.Time{Time: time.Now().Truncate(time.Second)}
		allowed(t, "update tasks/status", c.Status().Update(ctx, task))
		allowed(t, "create its leader election lease", c.Create(ctx, newLease(system, "orca-watcher-rbac-test")))
		allowed(t, "record leader election events", c.Create(ctx, coreEvent(system)))

		forbidden(t, "create a Pod", c.Create(ctx, newPod(f.ns)))
		forbidden(t, "create a Pod in Orca's namespace", c.Create(ctx, newPod(system)))
		// The Pods of ended runs past a Task's history limits or TTL, and Pods a
		// concurrencyPolicy Replace start replaced (a dry run: f.pod stays).
		allowed(t, "delete a Pod", c.Delete(ctx, f.pod, client.DryRunAll))
		forbidden(t, "delete every Pod of a namespace", c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(f.ns), client.DryRunAll))
		forbidden(t, "list leases in all namespaces", c.List(ctx, &coordinationv1.LeaseList{}))
		task.Spec.Description = "changed"
		forbidden(t, "update a task's spec", c.Update(ctx, task))
		forbidden(t, "get a secret", c.Get(ctx, client.ObjectKeyFromObject(f.secret), &corev1.Secret{}))
		// Let the Pod go.
		require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(f.pod), pod))
		pod.Finalizers = nil
		require.NoError(t, env.Client.Update(ctx, pod))
		// It deletes ended Pods: past a Task's history limits or TTL, or replaced.
		ended := newPod(f.ns)
		require.NoError(t, env.Client.Create(ctx, ended))
		allowed(t, "delete a Pod", c.Delete(ctx, ended))
	})

	t.Run("actions", func(t *testing.T) {
		c := asServiceAccount(t, system, "orca-actions")
		allowed(t, "list actions in all namespaces", c.List(ctx, &orcav1.ActionList{}))
		allowed(t, "list tasks in all namespaces", c.List(ctx, &orcav1.TaskList{}))
		action := &orcav1.Action{}
		allowed(t, "get an action", c.Get(ctx, client.ObjectKeyFromObject(f.action), action))
		action.Status.LastRun = &metav1.Time{Time: time.Now().Truncate(time.Second)}
		allowed(t, "update actions/status", c.Status().Update(ctx, action))
		allowed(t, "record an event", c.Create(ctx, newEvent(f.ns, f.task)))

		forbidden(t, "list secrets", c.List(ctx, &corev1.SecretList{}, client.InNamespace(f.ns)))
		forbidden(t, "get a secret of a namespace that did not grant it", c.Get(ctx, client.ObjectKeyFromObject(f.secret), &corev1.Secret{}))
		forbidden(t, "get the NATS passwords", c.Get(ctx, client.ObjectKey{Namespace: system, Name: "orca-nats-credentials"}, &corev1.Secret{}))
		forbidden(t, "create a Pod", c.Create(ctx, newPod(f.ns)))
		forbidden(t, "get a Pod", c.Get(ctx, client.ObjectKeyFromObject(f.pod), &corev1.Pod{}))
		forbidden(t, "list Pods", c.List(ctx, &corev1.PodList{}))
		forbidden(t, "patch a Pod", c.Patch(ctx, f.pod.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`))))
		forbidden(t, "delete a Pod", c.Delete(ctx, f.pod))
		forbidden(t, "delete an action", c.Delete(ctx, f.action))
		forbidden(t, "create a lease in Orca's namespace", c.Create(ctx, newLease(system, "orca-actions-rbac-test")))
		task := &orcav1.Task{}
		require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(f.task), task))
		task.Status.FailuresCount = 3
		forbidden(t, "update tasks/status", c.Status().Update(ctx, task))

		// The namespace's owner grants it the Secrets of that namespace, with the
		// README's command; the other namespaces' Secrets stay out of reach.
		other := newFixtures(t, env.Namespace(t))
		grantSecrets(t, f.ns)
		err := testenv.Eventually(ctx, 10*time.Second, func(ctx context.Context) (bool, error) {
			return c.Get(ctx, client.ObjectKeyFromObject(f.secret), &corev1.Secret{}) == nil, nil
		})
		allowed(t, "get a secret of a namespace that granted it", err)
		forbidden(t, "list secrets there", c.List(ctx, &corev1.SecretList{}, client.InNamespace(f.ns)))
		forbidden(t, "get a secret of another namespace", c.Get(ctx, client.ObjectKeyFromObject(other.secret), &corev1.Secret{}))
	})

	// Leader election needs Leases in Orca's namespace only: no service may write
	// one anywhere else, neither kube-system's leader leases nor the nodes'
	// heartbeats in kube-node-lease.
	for _, l := range foreignLeases {
		err := env.Client.Create(ctx, l.DeepCopy())
		if !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err)
		}
	}
	for _, svc := range services {
		t.Run(svc+" leases", func(t *testing.T) {
			c := asServiceAccount(t, system, "orca-"+svc)
			for _, ns := range []string{"kube-system", "kube-node-lease", "default", f.ns} {
				forbidden(t, "create a lease in "+ns, c.Create(ctx, newLease(ns, "orca-"+svc+"-elsewhere")))
			}
			for _, l := range foreignLeases {
				lease := &coordinationv1.Lease{}
				require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(l), lease))
				lease.Spec.HolderIdentity = ptr.To("orca-" + svc)
				forbidden(t, "take over lease "+l.Namespace+"/"+l.Name, c.Update(ctx, lease))
				forbidden(t, "delete lease "+l.Namespace+"/"+l.Name, c.Delete(ctx, lease))
			}
		})
	}
}

// foreignLeases are Leases of other components, which the tests create as admin.
var foreignLeases = []*coordinationv1.Lease{
	newLease("kube-system", "kube-controller-manager"),
	newLease("kube-node-lease", "node-1"),
}

func init() {
	for _, l := range foreignLeases {
		l.Spec.HolderIdentity = ptr.To("someone-else")
	}
}

// grantSecrets runs the README's command that lets the actions service read the
// Secrets of a namespace, for namespace ns.
func grantSecrets(t *testing.T, ns string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	require.NoError(t, err)
	cmd := regexp.MustCompile("kubectl -n team-a create rolebinding [^`\n]+").FindString(string(readme))
	require.NotEmpty(t, cmd, "the README's command that grants a namespace's Secrets")
	args := shellWords(t, strings.TrimPrefix(strings.ReplaceAll(cmd, "team-a", ns), "kubectl "))
	out, err := kubectlInRepo(t, args...)
	require.NoError(t, err, "%s:\n%s", cmd, out)
}

// TestNamespacedInstallGrantsRightsInItsNamespaceOnly applies overlays/namespaced's
// RBAC for real: its ServiceAccounts may work in orca-workflows, nowhere else.
func TestNamespacedInstallGrantsRightsInItsNamespaceOnly(t *testing.T) {
	applyRBAC(t, deployDir("overlays", "namespaced"))
	ctx := t.Context()
	inside := newFixtures(t, namespacedNS)
	t.Cleanup(func() {
		for _, o := range []client.Object{inside.task, inside.ignitor, inside.action, inside.pod, inside.secret} {
			_ = env.Client.Delete(ctx, o)
		}
	})
	outside := newFixtures(t, env.Namespace(t))

	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			c := asServiceAccount(t, namespacedNS, "orca-"+svc)
			switch svc {
			case "scheduler":
				allowed(t, "list ignitors in its namespace", c.List(ctx, &orcav1.IgnitorList{}, client.InNamespace(namespacedNS)))
				ig := &orcav1.Ignitor{}
				require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(inside.ignitor), ig))
				ig.Status.NextFire = &metav1.Time{Time: time.Now().Truncate(time.Second)}
				allowed(t, "update ignitors/status in its namespace", c.Status().Update(ctx, ig))
				allowed(t, "create its lease in its namespace", c.Create(ctx, newLease(namespacedNS, "orca-scheduler-rbac-test")))
				forbidden(t, "list ignitors in all namespaces", c.List(ctx, &orcav1.IgnitorList{}))
				forbidden(t, "get an ignitor elsewhere", c.Get(ctx, client.ObjectKeyFromObject(outside.ignitor), &orcav1.Ignitor{}))
			case "dispatcher":
				allowed(t, "create a Pod in its namespace", c.Create(ctx, newPod(namespacedNS)))
				allowed(t, "list tasks in its namespace", c.List(ctx, &orcav1.TaskList{}, client.InNamespace(namespacedNS)))
				forbidden(t, "create a Pod elsewhere", c.Create(ctx, newPod(outside.ns)))
				forbidden(t, "list tasks in all namespaces", c.List(ctx, &orcav1.TaskList{}))
			case "watcher":
				allowed(t, "list Pods in its namespace", c.List(ctx, &corev1.PodList{}, client.InNamespace(namespacedNS)))
				task := &orcav1.Task{}
				require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(inside.task), task))
				task.Status.FailuresCount = 1
				allowed(t, "update tasks/status in its namespace", c.Status().Update(ctx, task))
				forbidden(t, "list Pods in all namespaces", c.List(ctx, &corev1.PodList{}))
				forbidden(t, "get a Pod elsewhere", c.Get(ctx, client.ObjectKeyFromObject(outside.pod), &corev1.Pod{}))
			case "actions":
				allowed(t, "list actions in its namespace", c.List(ctx, &orcav1.ActionList{}, client.InNamespace(namespacedNS)))
				forbidden(t, "get a secret in its namespace, before the owner grants it", c.Get(ctx, client.ObjectKeyFromObject(inside.secret), &corev1.Secret{}))
				forbidden(t, "get a secret elsewhere", c.Get(ctx, client.ObjectKeyFromObject(outside.secret), &corev1.Secret{}))
				forbidden(t, "list actions in all namespaces", c.List(ctx, &orcav1.ActionList{}))
			}
		})
	}
}
