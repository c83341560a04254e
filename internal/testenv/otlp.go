package testenv

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is a span as an OTLP receiver got it: ids in hex, attribute values as
// strings.
type Span struct {
	Service  string // the resource's service.name
	Scope    string // the instrumentation scope
	Name     string
	Kind     string // SPAN_KIND_INTERNAL, SPAN_KIND_PRODUCER, ...
	TraceID  string
	SpanID   string
	ParentID string // empty for a root span
	Attrs    map[string]string
	Error    bool // the status is an error
}

// OTLP receives traces as an OpenTelemetry collector does, over OTLP/HTTP
// (protobuf, at URL + "/v1/traces") and OTLP/gRPC (at GRPCAddr), and keeps the
// spans.
type OTLP struct {
	// URL is the base URL of the OTLP/HTTP endpoint, the value of
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	URL string
	// GRPCAddr is the host:port of the OTLP/gRPC endpoint.
	GRPCAddr string

	mu    sync.Mutex
	spans []Span
	collectortrace.UnimplementedTraceServiceServer
}

// StartOTLP starts a receiver on free loopback ports; it stops when the test ends.
func StartOTLP(t testing.TB) *OTLP {
	t.Helper()
	o := &OTLP{}
	srv := httptest.NewServer(http.HandlerFunc(o.serveHTTP))
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlp receiver: %v", err)
	}
	g := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(g, o)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	o.GRPCAddr = l.Addr().String()
	return o
}

// Spans returns the spans received so far.
func (o *OTLP) Spans() []Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Span(nil), o.spans...)
}

// Trace returns the spans received so far of one trace.
func (o *OTLP) Trace(traceID string) []Span {
	var out []Span
	for _, s := range o.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// Export receives spans over OTLP/gRPC.
func (o *OTLP) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	o.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (o *OTLP) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, fmt.Sprintf("not an OTLP protobuf export request: %v", err), http.StatusBadRequest)
		return
	}
	o.add(&req)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (o *OTLP) add(req *collectortrace.ExportTraceServiceRequest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				o.spans = append(o.spans, Span{
					Service: service, Scope: ss.GetScope().GetName(), Name: s.GetName(), Kind: s.GetKind().String(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Attrs: attrs(s.GetAttributes()),
					Error: s.GetStatus().GetCode().String() == "STATUS_CODE_ERROR",
				})
			}
		}
	}
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_BoolValue:
			out[kv.GetKey()] = fmt.Sprint(v.GetBoolValue())
		case *commonpb.AnyValue_IntValue:
			out[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		case *commonpb.AnyValue_DoubleValue:
			out[kv.GetKey()] = fmt.Sprint(v.GetDoubleValue())
		default:
			out[kv.GetKey()] = v.GetStringValue()
		}
	}
	return out
}
