package tracing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/testenv"
)

// spans is one trace as the receiver got it.
type spans []testenv.Span

// find returns the span with the name and the attributes (key, value, ...).
func (ss spans) find(name string, attrs ...string) (testenv.Span, bool) {
	for _, s := range ss {
		if s.Name == name && hasAttrs(s, attrs) {
			return s, true
		}
	}
	return testenv.Span{}, false
}

// child returns the span with the name whose parent is parent.
func (ss spans) child(parent testenv.Span, name string, attrs ...string) (testenv.Span, bool) {
	for _, s := range ss {
		if s.Name == name && s.ParentID == parent.SpanID && hasAttrs(s, attrs) {
			return s, true
		}
	}
	return testenv.Span{}, false
}

func hasAttrs(s testenv.Span, attrs []string) bool {
	for i := 0; i+1 < len(attrs); i += 2 {
		if s.Attrs[attrs[i]] != attrs[i+1] {
			return false
		}
	}
	return true
}

func (ss spans) String() string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s %s parent=%s %q %v\n", s.SpanID, s.Name, s.ParentID, s.Service, s.Attrs)
	}
	return b.String()
}

// waitTrace waits until the trace has a span with each of the names and
// attributes (a name, then key=value strings; one entry a span), and returns
// the trace.
func waitTrace(t *testing.T, r *testenv.OTLP, traceID string, want ...[]string) spans {
	t.Helper()
	var tr spans
	missing := want
	err := testenv.Eventually(t.Context(), 20*time.Second, func(context.Context) (bool, error) {
		tr = r.Trace(traceID)
		missing = nil
		for _, w := range want {
			if _, ok := tr.find(w[0], w[1:]...); !ok {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, nil
	})
	require.NoError(t, err, "trace %s lacks %v; it has:\n%s", traceID, missing, tr)
	return tr
}

// traceParent returns the W3C traceparent of a sampled span.
func traceParent(s testenv.Span) string { return "00-" + s.TraceID + "-" + s.SpanID + "-01" }
