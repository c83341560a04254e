package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), ns) })
	return ns.Name
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
