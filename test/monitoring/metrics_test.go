package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sirocco-cloud/orca/internal/actions"
	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, func(e *testenv.Env) { env = e }))
}

func monitoringFile(name string) string {
	return filepath.Join(testenv.RepoRoot(), "deploy", "monitoring", name)
}

// dashboardQueries returns the PromQL of every panel of the Grafana dashboard,
// by "panel title #refId".
func dashboardQueries(t *testing.T) map[string]string {
	raw, err := os.ReadFile(monitoringFile("orca-dashboard.json"))
	require.NoError(t, err)
	type panel struct {
		ID      int
		Title   string
		Type    string
		Panels  json.RawMessage // a row's own panels
		Targets []struct{ RefID, Expr string }
		GridPos struct{ H, W, X, Y int }
	}
	var dash struct {
		UID, Title string
		Panels     []panel
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.Equal(t, "orca-overview", dash.UID)
	out := map[string]string{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %q is wider than the grid", p.Title)
		require.True(t, len(p.Panels) == 0 || string(p.Panels) == "[]", "collapsed row %q: its panels are not checked", p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			out[p.Title+" #"+tg.RefID] = tg.Expr
		}
	}
	return out
}

// ruleQueries returns the PromQL of every alert of the PrometheusRule, by alert.
func ruleQueries(t *testing.T) map[string]string {
	raw, err := os.ReadFile(monitoringFile("prometheusrule.yaml"))
	require.NoError(t, err)
	var rule struct {
		APIVersion, Kind string
		Metadata         struct {
			Name   string
			Labels map[string]string
		}
		Spec struct {
			Groups []struct {
				Name  string
				Rules []struct {
					Alert, Expr, For string
					Labels           map[string]string
					Annotations      map[string]string
				}
			}
		}
	}
	require.NoError(t, yaml.UnmarshalStrict(raw, &rule))
	require.Equal(t, "monitoring.coreos.com/v1", rule.APIVersion)
	require.Equal(t, "PrometheusRule", rule.Kind)
	out := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert)
			require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			require.NotEmpty(t, r.Annotations["description"], r.Alert)
			if r.For != "" {
				_, err := model.ParseDuration(r.For)
				require.NoError(t, err, "%s: for", r.Alert)
			}
			out["alert "+r.Alert] = r.Expr
		}
	}
	for _, want := range []string{"OrcaDeadLetters", "OrcaConsumerLagGrowing", "OrcaPodCreatesFailing", "OrcaStreamNearLimit"} {
		require.Contains(t, out, "alert "+want)
	}
	return out
}

// TestDashboardAndAlertsUseMetricsThatExist reads every query of the Grafana
// dashboard and the alert rules, runs Orca (its four services, an embedded
// NATS, the test control plane) through a workflow with a success, a failure, a
// failing Action and a dead letter, and checks that every metric those queries
// select is on /metrics with every label they match or group by, and with the
// values they match exactly.
func TestDashboardAndAlertsUseMetricsThatExist(t *testing.T) {
	queries := dashboardQueries(t)
	for k, v := range ruleQueries(t) {
		queries[k] = v
	}
	parsed := map[string]query{}
	for name, expr := range queries {
		q, err := parseQuery(expr)
		require.NoError(t, err, name)
		parsed[name] = q
	}

	series := scrapeRunningOrca(t)
	for _, name := range sortedKeys(parsed) {
		q := parsed[name]
		seen := map[string]bool{} // label names of the metrics the query selects
		for _, s := range q.selectors {
			got, ok := series[s.metric]
			if !assert.True(t, ok, "%s: metric %s is not on /metrics", name, s.metric) {
				continue
			}
			for _, labels := range got {
				for l := range labels {
					seen[l] = true
				}
			}
			for _, m := range s.matchers {
				assert.True(t, slices.ContainsFunc(got, func(l map[string]string) bool { _, ok := l[m.name]; return ok }),
					"%s: %s has no label %s", name, s.metric, m.name)
				if m.op == "=" {
					assert.True(t, slices.ContainsFunc(got, func(l map[string]string) bool { return l[m.name] == m.value }),
						"%s: %s has no series with %s=%q", name, s.metric, m.name, m.value)
				}
			}
		}
		for _, l := range q.grouping {
			assert.True(t, seen[l], "%s: groups by %s, which none of its metrics has", name, l)
		}
	}
}

// workflow: an Ignitor fires "go" at once; task "ok" succeeds and starts "bad",
// which fails and runs a webhook Action that cannot be reached.
const workflow = `apiVersion: sirocco.cloud/v1alpha1
kind: Action
metadata: {name: hook}
spec: {webhook: {url: "http://127.0.0.1:1/unreachable"}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: ok}
spec:
  startOnIgnition: [go]
  template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Task
metadata: {name: bad}
spec:
  startOnSuccess: [ok]
  failureActions: [hook]
  template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}
---
apiVersion: sirocco.cloud/v1alpha1
kind: Ignitor
metadata: {name: go}
spec: {scheduled: "NOW"}
`

// scrapeRunningOrca runs Orca through the workflow and returns its /metrics:
// the label sets of each series, by series name (a histogram gives its
// _bucket, _sum and _count series).
func scrapeRunningOrca(t *testing.T) map[string][]map[string]string {
	ns := env.Namespace(t)
	metricsAddr := freeAddr(t)
	natsURL := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	state := t.TempDir() // removed after the cleanup below stopped Orca
	go func() {
		done <- cli.RunAll(ctx, io.Discard, cli.RunOptions{
			App: app.Options{
				Kubeconfig: env.KubeconfigPath, Namespaces: []string{ns},
				MetricsAddr: metricsAddr, ProbeAddr: "0", LogFormat: "text",
			},
			StateDir: state, NATSPort: -1, UIAddress: "0",
			NATSStarted: func(url string) { natsURL <- url },
			// The failing webhook points at a closed port of this host, which
			// webhooks may not reach unless allowed.
			Actions: actions.Options{Egress: actions.EgressOptions{AllowedCIDRs: actions.LoopbackCIDRs}},
		})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	var url string
	select {
	case url = <-natsURL:
	case err := <-done:
		t.Fatalf("orca run stopped: %v", err)
	}
	_, err := env.KubectlInput(t.Context(), workflow, "apply", "-n", ns, "-f", "-")
	require.NoError(t, err)

	kubelet := testenv.Kubelet{Client: env.Client}
	ok := pod(t, ns, "ok")
	require.NoError(t, kubelet.Succeed(t.Context(), client.ObjectKeyFromObject(&ok), "fine"))
	bad := pod(t, ns, "bad")
	require.NoError(t, kubelet.End(t.Context(), client.ObjectKeyFromObject(&bad), 1, "broken"))

	// An ignition over the dispatcher's size limit is dead-lettered.
	b, err := bus.Connect(t.Context(), bus.Options{URLs: []string{url}})
	require.NoError(t, err)
	defer func() { _ = b.Close() }()
	require.NoError(t, b.PublishIgnition(t.Context(), bus.Ignition{
		ID: "too-big", Source: "test", Namespace: ns, Name: "go", Data: []byte(strings.Repeat("x", 300<<10)),
	}))

	var families map[string]*dto.MetricFamily
	want := []string{
		`orca_actions_runs_total{outcome="failed",plugin="webhook"}`,
		`orca_scheduler_fires_total{outcome="fired"} 1`,
		`orca_bus_published_total{outcome="stored",type="cloud.sirocco.orca.task.failed"} 1`,
		`orca_bus_event_age_seconds_bucket{consumer="orca-dispatcher-`, // scoped to the namespace
		`orca_consumer_pending_messages{consumer="orca-dispatcher-`,
		// The stream's default limits, and its usage against them.
		fmt.Sprintf(`orca_stream_max_bytes{stream="ORCA"} %g`, float64(bus.DefaultStreamMaxBytes)),
		fmt.Sprintf(`orca_stream_max_messages{stream="ORCA"} %g`, float64(bus.DefaultStreamMaxMsgs)),
		`orca_bus_stream_usage_ratio{stream="ORCA"}`,
	}
	err = testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
		body, err := get(ctx, "http://"+metricsAddr+"/metrics")
		if err != nil {
			return false, nil
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false, nil
			}
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		families, err = p.TextToMetricFamilies(strings.NewReader(body))
		return true, err
	})
	require.NoError(t, err, "the metrics of the workflow's events show on /metrics: %q", want)

	out := map[string][]map[string]string{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if f.GetType() != dto.MetricType_HISTOGRAM {
				out[name] = append(out[name], labels)
				continue
			}
			out[name+"_sum"] = append(out[name+"_sum"], labels)
			out[name+"_count"] = append(out[name+"_count"], labels)
			for _, b := range m.GetHistogram().GetBucket() {
				withLE := map[string]string{"le": fmt.Sprint(b.GetUpperBound())}
				for k, v := range labels {
					withLE[k] = v
				}
				out[name+"_bucket"] = append(out[name+"_bucket"], withLE)
			}
		}
	}
	return out
}

// pod waits for the first Pod of a Task.
func pod(t *testing.T, ns, task string) corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	err := testenv.Eventually(t.Context(), 30*time.Second, func(ctx context.Context) (bool, error) {
		err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{orcav1.LabelTask: task})
		return err == nil && len(pods.Items) > 0, err
	})
	require.NoError(t, err, "a Pod of task %s", task)
	return pods.Items[0]
}

// TestKustomizationRenders renders deploy/monitoring with kubectl kustomize:
// the rule, the ServiceMonitor and the dashboard's ConfigMap for Grafana's
// sidecar.
func TestKustomizationRenders(t *testing.T) {
	out, err := env.Kubectl(t.Context(), "kustomize", filepath.Join(testenv.RepoRoot(), "deploy", "monitoring"))
	require.NoError(t, err)
	for _, want := range []string{"kind: PrometheusRule", "kind: ServiceMonitor", "kind: ConfigMap", "name: orca-dashboard\n", "grafana_dashboard: \"1\"", "orca-dashboard.json: |", "namespace: orca-system"} {
		assert.Contains(t, out, want)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
