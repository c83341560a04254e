package ha_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// apiForward is an address where the API server is not yet: a kubeconfig points
// there, and up forwards it to the test's API server.
type apiForward struct {
	addr       string
	kubeconfig string
	once       sync.Once
}

func newAPIForward(t *testing.T) *apiForward {
	t.Helper()
	f := &apiForward{addr: freeAddr(t), kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	cfg, err := clientcmd.LoadFromFile(env.KubeconfigPath)
	require.NoError(t, err)
	for _, c := range cfg.Clusters {
		// The API server's certificate names 127.0.0.1, not a port.
		c.Server = "https://" + f.addr
	}
	require.NoError(t, clientcmd.WriteToFile(*cfg, f.kubeconfig))
	return f
}

// up starts forwarding to the API server until the test ends.
func (f *apiForward) up(t *testing.T) {
	t.Helper()
	u, err := url.Parse(env.Config.Host)
	require.NoError(t, err)
	target := u.Host
	l, err := net.Listen("tcp", f.addr)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
			wg.Go(func() { _, _ = io.Copy(in, out); _ = in.Close() })
		}
	})
}

// TestServicesStartedBeforeTheAPIServerWaitThenWork starts each service while
// nothing listens where its kubeconfig points: it keeps running, live but not
// ready, says what it waits for, and once the API server is there does its work
// without a restart.
func TestServicesStartedBeforeTheAPIServerWaitThenWork(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	srv, _ := testenv.NATS(t)
	hook := newWebhook(t)
	apply(t, ns, workflow(hook.URL, "go")+"---\n"+ignitor("go", "NOW"))
	api := newAPIForward(t)

	procs := map[string]*proc{}
	for _, svc := range services {
		procs[svc] = startService(t, svc, svc, "--kubeconfig", api.kubeconfig, "--nats-url", srv.URL(), "--namespaces", ns)
	}
	for _, svc := range services {
		p := procs[svc]
		var last string
		err := testenv.Eventually(t.Context(), 15*time.Second, func(ctx context.Context) (bool, error) {
			if !p.running() {
				return false, errors.New("exited")
			}
			live, _, err := get(ctx, p.probes, "/healthz")
			if err != nil {
				return false, err
			}
			ready, body, err := get(ctx, p.probes, "/readyz")
			last = fmt.Sprintf("healthz %d, readyz %d %q", live, ready, body)
			// Tried more than once: it waits, it did not give up.
			tries := strings.Count(p.out.String(), "waiting for kube-apiserver")
			return live == http.StatusOK && ready == http.StatusServiceUnavailable &&
				strings.Contains(body, "kube-apiserver at https://"+api.addr) && tries >= 2, err
		})
		require.NoError(t, err, "%s while the API server is away: %s, running %v", svc, last, p.running())
	}

	api.up(t)
	for _, svc := range services {
		procs[svc].waitReady(t, 20*time.Second)
	}
	// Each service does its part: the scheduler fires, the dispatcher starts the
	// Pod, the watcher reports its end, the actions service calls the hook.
	kubelet(t, ns)
	var task orcav1.Task
	err := testenv.Eventually(t.Context(), 20*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "work"}, &task)
		return err == nil && task.Status.LastSuccess != nil && len(hook.received()) == 1, err
	})
	require.NoError(t, err, "task status %+v, hook got %v", task.Status, hook.received())
	assert.Len(t, pods(t, ns), 1)
	for svc, p := range procs {
		assert.True(t, p.running(), "%s runs on", svc)
		assert.Contains(t, p.out.String(), "kube-apiserver reached", svc)
	}
}
