package actions_test

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// TestWebhooksMayNotReachThisHostNorTheMetadataAddress runs the service with the
// default egress policy: webhooks to loopback, by address or by a name that
// resolves there, and to the cloud metadata address are refused before any
// request leaves, at once and without retries, and say so in fixed words.
func TestWebhooksMayNotReachThisHostNorTheMetadataAddress(t *testing.T) {
	t.Parallel()
	f := startService(t, true, func(o *actions.Options) { o.Egress = actions.EgressOptions{} })
	h := newHook(t, http.StatusOK)
	u, err := url.Parse(h.URL)
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(u.Host)
	require.NoError(t, err)

	targets := map[string]string{
		"loopback":     h.URL,
		"by-name":      "http://localhost:" + port + "/",
		"mapped":       "http://[::ffff:127.0.0.1]:" + port + "/",
		"unspecified":  "http://0.0.0.0:" + port + "/",
		"metadata":     "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"unresolvable": "http://orca-test.invalid/",
	}
	var names []orcav1.ObjectName
	for name, target := range targets {
		f.createAction(t, name, orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{
			URL: target, Headers: []orcav1.WebhookHeader{{Name: "Authorization", Value: ptrTo("Bearer s3cret")}},
		}})
		names = append(names, orcav1.ObjectName(name))
	}
	f.createTask(t, "probe", nil, names)
	f.publish(t, "probe", "pod-uid-egress", false)

	for name := range targets {
		eventually(t, name+" reported", func() bool { return f.actionStatus(t, name).LastRun != nil })
		st := f.actionStatus(t, name)
		cond := meta.FindStatusCondition(st.Conditions, actions.ConditionReady)
		require.NotNil(t, cond, name)
		if name == "unresolvable" {
			// A name that does not resolve never reaches an address.
			assert.Contains(t, st.LastError, "host not found", name)
			continue
		}
		assert.Contains(t, st.LastError, "the address is not allowed by the webhook egress policy", name)
		assert.NotContains(t, st.LastError, "attempt", "%s: refused once, not retried", name)
		assert.Equal(t, actions.ReasonMisconfigured, cond.Reason, name)
	}
	assert.Empty(t, h.requests(), "no request reached this host")
}

// TestWebhookRedirectsStayOnTheirHost has a webhook answer with redirects: to
// another path of the same host, followed with the Action's headers; to another
// host, not followed, so the secret header never reaches it.
func TestWebhookRedirectsStayOnTheirHost(t *testing.T) {
	t.Parallel()
	f := startService(t, true)
	elsewhere := newHook(t, http.StatusOK)
	var origin *hook
	origin = newHookFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusTemporaryRedirect)
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/stolen", http.StatusTemporaryRedirect)
		case "/here":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	for name, path := range map[string]string{"moved": "/moved", "away": "/away"} {
		f.createAction(t, name, orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{
			URL: origin.URL + path, Headers: []orcav1.WebhookHeader{{Name: "X-Token", Value: ptrTo("s3cret")}},
		}})
	}
	f.createTask(t, "deploy", []orcav1.ObjectName{"moved", "away"}, nil)
	f.publish(t, "deploy", "pod-uid-redirect", true)

	eventually(t, "the same-host redirect succeeded", func() bool { return f.actionStatus(t, "moved").LastSuccess != nil })
	eventually(t, "the cross-host redirect failed", func() bool { return f.actionStatus(t, "away").LastError != "" })
	assert.Equal(t, "webhook "+origin.URL+"/away: attempt 1, not retried: answered 307 Temporary Redirect: redirect to another host not followed",
		f.actionStatus(t, "away").LastError)
	assert.Empty(t, elsewhere.requests(), "nothing, and no header, went to the other host")
	var paths []string
	for _, r := range origin.requests() {
		paths = append(paths, r.path)
		assert.Equal(t, "s3cret", r.header.Get("X-Token"), r.path)
	}
	assert.ElementsMatch(t, []string{"/moved", "/here", "/away"}, paths)
}

// TestWebhookAnswersBodiesAreNeverStored has webhooks answer errors with bodies
// that must not leak: the Action's status and the Task's Events keep the status
// code and fixed words only.
func TestWebhookAnswersBodiesAreNeverStored(t *testing.T) {
	t.Parallel()
	f := startService(t, true)
	const leak = "db-password=hunter2 internal.svc.cluster.local"
	for name, status := range map[string]int{"broken": http.StatusInternalServerError, "refusing": http.StatusForbidden} {
		h := newHookFunc(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(leak))
		})
		f.createAction(t, name, orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: h.URL, Retries: ptrTo[int32](0)}})
	}
	closed := newHook(t, http.StatusOK)
	closed.Close()
	f.createAction(t, "closed", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: closed.URL, Retries: ptrTo[int32](0)}})
	f.createTask(t, "job", nil, []orcav1.ObjectName{"broken", "refusing", "closed"})
	f.publish(t, "job", "pod-uid-body", false)

	want := map[string]string{
		"broken":   "answered 500 Internal Server Error",
		"refusing": "answered 403 Forbidden",
		"closed":   "connection refused",
	}
	for name, words := range want {
		eventually(t, name+" reported", func() bool {
			return f.actionStatus(t, name).LastError != "" &&
				f.findEvent(t, "job", corev1.EventTypeWarning, actions.ReasonFailed, name) != nil
		})
		st := f.actionStatus(t, name)
		assert.True(t, strings.HasSuffix(st.LastError, words), "%s: %q", name, st.LastError)
		cond := meta.FindStatusCondition(st.Conditions, actions.ConditionReady)
		require.NotNil(t, cond)
		assert.Equal(t, metav1.ConditionFalse, cond.Status)
		for _, text := range []string{st.LastError, cond.Message, f.findEvent(t, "job", corev1.EventTypeWarning, actions.ReasonFailed, name).Note} {
			assert.NotContains(t, text, "hunter2", name)
			assert.NotContains(t, text, "svc.cluster.local", name)
		}
	}
	assert.NotContains(t, f.actionStatus(t, "closed").LastError, "dial tcp", "no details of the network behind the URL")
}

// TestNATSActionsPublishOnlyWhereTheServiceMay runs the service as the install
// does, with nats Actions limited to orca-notify.<their namespace>.>: a subject
// elsewhere, another namespace's included, fails visibly instead of being
// dropped by the NATS server without a word.
func TestNATSActionsPublishOnlyWhereTheServiceMay(t *testing.T) {
	t.Parallel()
	f := startService(t, true, func(o *actions.Options) { o.NATSSubjects = []string{"orca-notify.{namespace}.>"} })
	nc, err := nats.Connect(f.natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("orca-notify.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	own := "orca-notify." + f.ns + ".builds"
	f.createAction(t, "own", orcav1.ActionSpec{NATS: &orcav1.NATSAction{Subject: own}})
	f.createAction(t, "elsewhere", orcav1.ActionSpec{NATS: &orcav1.NATSAction{Subject: "alerts.builds"}})
	f.createAction(t, "neighbour", orcav1.ActionSpec{NATS: &orcav1.NATSAction{Subject: "orca-notify.team-b.builds"}})
	f.createTask(t, "build", []orcav1.ObjectName{"own", "elsewhere", "neighbour"}, nil)
	f.publish(t, "build", "pod-uid-nats", true)

	msg, err := sub.NextMsg(20 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, own, msg.Subject)
	for _, name := range []string{"elsewhere", "neighbour"} {
		eventually(t, name+" refused", func() bool { return f.actionStatus(t, name).LastError != "" })
		assert.Contains(t, f.actionStatus(t, name).LastError, "is not one the actions service may publish to in namespace "+f.ns, name)
	}
	eventually(t, "own succeeded", func() bool { return f.actionStatus(t, "own").LastSuccess != nil })
	_, err = sub.NextMsg(200 * time.Millisecond)
	assert.ErrorIs(t, err, nats.ErrTimeout, "nothing else was published")
}

// TestTheServiceReadsSecretsOnlyWhereANamespaceGrantsThem runs the service with
// the rights the install gives it (its generated ClusterRole): a webhook header
// from a Secret fails, saying which binding is missing, until the namespace binds
// orca-actions-secret-reader to the service; then the header is sent.
func TestTheServiceReadsSecretsOnlyWhereANamespaceGrantsThem(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := env.Namespace(t)
	user := "orca-actions-" + ns
	var generated, reader rbacv1.ClusterRole
	readYAML(t, filepath.Join(testenv.RepoRoot(), "deploy", "kustomize", "rbac", "actions", "role.yaml"), &generated)
	readYAML(t, filepath.Join(testenv.RepoRoot(), "deploy", "kustomize", "base", "rbac", "actions-secret-reader.yaml"), &reader)
	require.Equal(t, actions.SecretReaderRole, reader.Name)
	generated.Name, reader.Name = user, user+"-secrets"
	for _, cr := range []*rbacv1.ClusterRole{&generated, &reader} {
		require.NoError(t, env.Client.Create(ctx, cr))
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	require.NoError(t, env.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: generated.Name},
		Subjects:   subject,
	}))
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	f := startServiceAs(t, cfg, ns, true)

	h := newHook(t, http.StatusOK)
	require.NoError(t, env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hook-auth"}, StringData: map[string]string{"token": "Bearer s3cret"},
	}))
	f.createAction(t, "notify", orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{
		URL: h.URL, Headers: []orcav1.WebhookHeader{{Name: "Authorization", ValueFrom: &orcav1.SecretKeySelector{Name: "hook-auth", Key: "token"}}},
	}})
	f.createTask(t, "build", []orcav1.ObjectName{"notify"}, nil)
	f.publish(t, "build", "pod-uid-secret-1", true)
	eventually(t, "the missing grant reported", func() bool {
		return f.findEvent(t, "build", corev1.EventTypeWarning, actions.ReasonMisconfigured, "notify") != nil &&
			f.actionStatus(t, "notify").LastError != ""
	})
	assert.Contains(t, f.actionStatus(t, "notify").LastError,
		"the actions service may not read secret hook-auth: bind the ClusterRole "+actions.SecretReaderRole+" to its ServiceAccount in namespace "+ns)
	assert.Empty(t, h.requests())

	require.NoError(t, env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orca-actions-secret-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects:   subject,
	}))
	as, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	eventually(t, "the API server applies the grant", func() bool {
		return as.Get(ctx, types.NamespacedName{Namespace: ns, Name: "hook-auth"}, &corev1.Secret{}) == nil
	})
	f.publish(t, "build", "pod-uid-secret-2", true)
	eventually(t, "the webhook got the header", func() bool { return len(h.requests()) == 1 })
	assert.Equal(t, "Bearer s3cret", h.requests()[0].header.Get("Authorization"))
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, into))
}
