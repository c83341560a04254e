package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// Namespace creates a namespace named after the test (with a random suffix) and
// deletes it when the test ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	prefix := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	prefix = strings.Trim(prefix[:min(len(prefix), 40)], "-") + "-"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	require.NoError(t, e.Client.Create(t.Context(), ns))
	t.Cleanup(func() {
		ctx := context.Background()
		_ = e.Client.Delete(ctx, ns)
		e.dropFinalizers(ctx, ns.Name)
	})
	return ns.Name
}

// dropFinalizers removes the finalizers of the Pods of the namespace ns, which
// the test deletes: no kubelet ends them, and the services of a later test
// would see them as Orca's Pods that ended without being reported.
func (e *Env) dropFinalizers(ctx context.Context, ns string) {
	var pods corev1.PodList
	if e.Client.List(ctx, &pods, client.InNamespace(ns)) != nil {
		return
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; len(p.Finalizers) > 0 {
			_ = e.Client.Patch(ctx, p, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))
		}
	}
}

// NATS starts an embedded nats-server with JetStream in a test folder, and
// returns it with a Bus connected to it and Orca's stream created. Both stop when
// the test ends.
func NATS(t testing.TB) (*bus.Embedded, *bus.Bus) {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{srv.URL()}, Name: t.Name()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureStream(t.Context(), bus.StreamOptions{}))
	return srv, b
}
