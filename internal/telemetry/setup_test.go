package telemetry_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/sirocco-cloud/orca/internal/telemetry"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// otelVars are the variables Setup reads; each test starts with none set.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_INSECURE",
}

func setenv(t *testing.T, kv ...string) {
	for _, name := range otelVars {
		t.Setenv(name, "")
	}
	for i := 0; i < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

var opts = telemetry.Options{Service: "orca-test", Log: slog.New(slog.DiscardHandler)}

// waitSpans waits until the receiver has n spans.
func waitSpans(t *testing.T, r *testenv.OTLP, n int) []testenv.Span {
	t.Helper()
	err := testenv.Eventually(t.Context(), 10*time.Second, func(context.Context) (bool, error) {
		return len(r.Spans()) >= n, nil
	})
	require.NoError(t, err, "the receiver got %d spans, want %d", len(r.Spans()), n)
	return r.Spans()
}

func TestNoExportUnlessTheEnvironmentAsksForIt(t *testing.T) {
	r := testenv.StartOTLP(t)
	for name, env := range map[string][]string{
		"nothing set":     nil,
		"sdk disabled":    {"OTEL_EXPORTER_OTLP_ENDPOINT", r.URL, "OTEL_SDK_DISABLED", "true"},
		"exporter none":   {"OTEL_EXPORTER_OTLP_ENDPOINT", r.URL, "OTEL_TRACES_EXPORTER", "none"},
		"only a protocol": {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
	} {
		t.Run(name, func(t *testing.T) {
			setenv(t, env...)
			tp, err := telemetry.NewProvider(t.Context(), opts)
			require.NoError(t, err)
			assert.Nil(t, tp)
		})
	}
}

func TestUnsupportedSettingsAreRefused(t *testing.T) {
	for name, env := range map[string][]string{
		"zipkin exporter": {"OTEL_TRACES_EXPORTER", "zipkin"},
		"json protocol":   {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
	} {
		t.Run(name, func(t *testing.T) {
			setenv(t, env...)
			_, err := telemetry.Setup(t.Context(), opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), env[len(env)-1], "the error names the setting")
		})
	}
}

func TestSpansAreExportedOverOTLP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     func(r *testenv.OTLP) []string
		service string
	}{
		{"http/protobuf by default", func(r *testenv.OTLP) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT", r.URL}
		}, "orca-test"},
		{"traces endpoint, service name from the environment", func(r *testenv.OTLP) []string {
			return []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.URL + "/v1/traces", "OTEL_SERVICE_NAME", "my-orca"}
		}, "my-orca"},
		{"grpc", func(r *testenv.OTLP) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://" + r.GRPCAddr, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}
		}, "orca-test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.StartOTLP(t)
			setenv(t, tc.env(r)...)
			tp, err := telemetry.NewProvider(t.Context(), opts)
			require.NoError(t, err)
			require.NotNil(t, tp)
			ctx, parent := tp.Tracer("test").Start(t.Context(), "parent")
			_, child := tp.Tracer("test").Start(ctx, "child")
			child.End()
			parent.End()
			require.NoError(t, tp.Shutdown(t.Context()))

			spans := waitSpans(t, r, 2)
			require.Len(t, spans, 2)
			byName := map[string]testenv.Span{spans[0].Name: spans[0], spans[1].Name: spans[1]}
			assert.Equal(t, byName["parent"].SpanID, byName["child"].ParentID)
			assert.Equal(t, byName["parent"].TraceID, byName["child"].TraceID)
			assert.Equal(t, tc.service, byName["child"].Service)
		})
	}
}

func TestSetupInstallsTheGlobalProvider(t *testing.T) {
	r := testenv.StartOTLP(t)
	setenv(t, "OTEL_EXPORTER_OTLP_ENDPOINT", r.URL)
	stop, err := telemetry.Setup(t.Context(), opts)
	require.NoError(t, err)
	_, span := otel.Tracer("test").Start(t.Context(), "global")
	span.End()
	stop() // exports what is left
	spans := waitSpans(t, r, 1)
	assert.Equal(t, "global", spans[0].Name)
	assert.Equal(t, "orca-test", spans[0].Service)
}
