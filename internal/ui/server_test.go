package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
	"github.com/sirocco-cloud/orca/internal/ui"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

const seed = `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: task1}
spec:
  startOnIgnition: [ignitor1]
  startOnFailure: [task1]
  template: {spec: {restartPolicy: Never, containers: [{name: one, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: task2}
spec:
  startOnSuccess: [task1]
  template: {spec: {restartPolicy: Never, containers: [{name: two, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata: {name: ignitor1}
spec: {scheduled: "0 0 1 1 *"}
`

const token = "test-token-0123456789"

// serve runs a web view of a new namespace holding the seed, and returns its
// base URL and namespace.
func serve(t *testing.T) (string, string) {
	ns := env.Namespace(t)
	_, err := env.KubectlInput(t.Context(), seed, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)
	_, b := testenv.NATS(t)
	srv, err := ui.New(ui.Options{Namespace: ns, Config: env.Config, Bus: b, Token: token})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, srv.Start(ctx))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "http://" + l.Addr().String(), ns
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, url string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// TestEveryRequestNeedsTheToken: the page and its API answer only to the token,
// given once in the URL (then a cookie) or as a bearer token; a POST must be
// JSON from the page itself.
func TestEveryRequestNeedsTheToken(t *testing.T) {
	base, _ := serve(t)
	bearer := map[string]string{"Authorization": "Bearer " + token}
	for _, path := range []string{"/", "/app.js", "/api/graph", "/api/runs", "/api/events"} {
		resp, body := do(t, "GET", base+path, nil, "")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		assert.Contains(t, body, "open the address that `orca ui` or `orca run` printed", path)
	}
	resp, _ := do(t, "GET", base+"/?token=wrong", nil, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = do(t, "GET", base+"/api/graph", map[string]string{"Authorization": "Bearer wrong"}, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The token in the URL sets a cookie and is dropped from the address.
	resp, _ = do(t, "GET", base+"/?token="+token, nil, "")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/", resp.Header.Get("Location"))
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	withCookie := map[string]string{"Cookie": c.Name + "=" + c.Value}
	resp, body := do(t, "GET", base+"/", withCookie, "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "<title>Orca</title>")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")

	resp, body = do(t, "GET", base+"/api/graph", bearer, "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"name":"task1"`)

	fire := `{"ignition":"ignitor1","data":"x"}`
	resp, _ = do(t, "POST", base+"/api/fire", withCookie, fire)
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "a form post from another site is refused")
	resp, _ = do(t, "POST", base+"/api/fire", map[string]string{"Cookie": withCookie["Cookie"], "Content-Type": "application/json", "Origin": "http://evil.example"}, fire)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, body = do(t, "POST", base+"/api/fire", map[string]string{"Authorization": bearer["Authorization"], "Content-Type": "application/json"}, `{"ignition":"Not_A_Name"}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, `ignition \"Not_A_Name\" is not a valid name`)
}

// sseReader reads server-sent events.
type sseReader struct{ r *bufio.Reader }

func (s sseReader) next(t *testing.T) (event, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && event != "":
			return event, data
		}
	}
}

// until reads events until one of the kind satisfies ok.
func (s sseReader) until(t *testing.T, kind string, ok func(data string) bool) string {
	t.Helper()
	for {
		e, d := s.next(t)
		if e == kind && ok(d) {
			return d
		}
	}
}

// TestEventsPushTheGraphTheRunsAndTheTaskStates follows /api/events: the
// snapshot first, then an ignition fired through the API starts task1 and opens
// a run, and a new Task changes the graph, without a reload.
func TestEventsPushTheGraphTheRunsAndTheTaskStates(t *testing.T) {
	base, ns := serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := sseReader{bufio.NewReader(resp.Body)}

	kind, data := events.next(t)
	require.Equal(t, "snapshot", kind)
	var snap struct {
		Graph struct {
			Namespace string
			Nodes     []struct{ Name, Kind string }
			Edges     []struct {
				From, To, Kind string
				Back           bool
			}
		}
		Runs []any
	}
	require.NoError(t, json.Unmarshal([]byte(data), &snap))
	assert.Equal(t, ns, snap.Graph.Namespace)
	assert.Len(t, snap.Graph.Nodes, 3)
	assert.Len(t, snap.Graph.Edges, 3)
	assert.Empty(t, snap.Runs)

	resp2, body := do(t, "POST", base+"/api/fire", map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"},
		`{"ignition":"ignitor1","data":"hello from the page"}`)
	require.Equal(t, http.StatusOK, resp2.StatusCode, body)
	var fired struct{ ID, Run, Subject string }
	require.NoError(t, json.Unmarshal([]byte(body), &fired))
	assert.Equal(t, "orca.ignited."+ns+".ignitor1", fired.Subject)

	events.until(t, "tasks", func(d string) bool {
		return strings.Contains(d, `"task1":{"state":"started","run":"`+fired.Run+`"`)
	})
	events.until(t, "run", func(d string) bool { return strings.Contains(d, `"id":"`+fired.Run+`"`) })
	resp2, body = do(t, "GET", base+"/api/runs/"+fired.Run, map[string]string{"Authorization": "Bearer " + token}, "")
	require.Equal(t, http.StatusOK, resp2.StatusCode)
	assert.Contains(t, body, `"kind":"ignited"`)
	assert.Contains(t, body, `"data":"hello from the page"`)
	assert.Contains(t, body, `"source":"orca/ui"`)
	resp2, _ = do(t, "GET", base+"/api/runs/nope", map[string]string{"Authorization": "Bearer " + token}, "")
	assert.Equal(t, http.StatusNotFound, resp2.StatusCode)

	_, err = env.KubectlInput(t.Context(), `apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: task3}
spec:
  startOnFailure: [task2]
  template: {spec: {restartPolicy: Never, containers: [{name: three, image: busybox}]}}
`, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)
	events.until(t, "graph", func(d string) bool { return strings.Contains(d, `"name":"task3"`) })
}
