package monitoring_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// matcher is one label matcher of a selector: name op "value".
type matcher struct{ name, op, value string }

// selector is a metric selector of a PromQL expression: name{matchers}.
type selector struct {
	metric   string
	matchers []matcher
}

// query is what a PromQL expression reads: its selectors, and the labels it
// groups or matches by (by, without, on, ignoring, group_left, group_right).
type query struct {
	selectors []selector
	grouping  []string
}

// keywords are the identifiers of PromQL that are not metric names when they
// stand alone.
var keywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}

// groupings take a list of label names in parentheses.
var groupings = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// parseQuery finds the selectors of a PromQL expression, enough of PromQL for
// dashboards and alert rules: functions and aggregations (any identifier before
// "("), grouping clauses, binary operators, numbers, strings, and range or
// subquery brackets (skipped whole, so that Grafana's $__rate_interval may
// stand in them). What it cannot read is an error, not a silent pass.
func parseQuery(expr string) (query, error) {
	var q query
	toks, err := tokenize(expr)
	if err != nil {
		return q, err
	}
	depth := 0
	for _, t := range toks {
		switch t {
		case "(":
			depth++
		case ")":
			depth--
		}
		if depth < 0 {
			break
		}
	}
	if depth != 0 {
		return q, fmt.Errorf("unbalanced parentheses in %q", expr)
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		switch {
		case t == "[":
			for i < len(toks) && toks[i] != "]" {
				i++
			}
			if i == len(toks) {
				return q, fmt.Errorf("unclosed [ in %q", expr)
			}
		case groupings[t]:
			if next != "(" {
				return q, fmt.Errorf("%s without a label list in %q", t, expr)
			}
			i += 2
			for ; i < len(toks) && toks[i] != ")"; i++ {
				if toks[i] != "," {
					q.grouping = append(q.grouping, toks[i])
				}
			}
		case isIdent(t) && (next == "(" || groupings[next]):
			// a function, or an aggregation (sum by (x) (...))
		case isIdent(t) && !keywords[t]:
			s := selector{metric: t}
			if next == "{" {
				i += 2
				for ; i < len(toks) && toks[i] != "}"; i++ {
					if toks[i] == "," {
						continue
					}
					if i+2 >= len(toks) || !isIdent(toks[i]) || !strings.HasPrefix(toks[i+2], `"`) {
						return q, fmt.Errorf("unreadable matcher at %q in %q", toks[i], expr)
					}
					s.matchers = append(s.matchers, matcher{toks[i], toks[i+1], strings.Trim(toks[i+2], `"`)})
					i += 2
				}
			}
			q.selectors = append(q.selectors, s)
		case t == "{":
			return q, fmt.Errorf("a selector without a metric name in %q", expr)
		}
	}
	if len(q.selectors) == 0 {
		return q, fmt.Errorf("no metric in %q", expr)
	}
	return q, nil
}

// tokenize splits a PromQL expression into identifiers, numbers, "quoted
// strings" (as written, unescaped), operators and brackets.
func tokenize(expr string) ([]string, error) {
	var out []string
	r := []rune(expr)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(r) && r[j] != c {
				if r[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(r) {
				return nil, fmt.Errorf("unclosed string in %q", expr)
			}
			out = append(out, `"`+strings.ReplaceAll(string(r[i+1:j]), `\\`, `\`)+`"`)
			i = j + 1
		case c == '_' || c == ':' || c == '$' || unicode.IsLetter(c) || unicode.IsDigit(c) || c == '.':
			j := i
			for j < len(r) && (r[j] == '_' || r[j] == ':' || r[j] == '$' || r[j] == '.' || unicode.IsLetter(r[j]) || unicode.IsDigit(r[j])) {
				j++
			}
			out = append(out, string(r[i:j]))
			i = j
		case strings.ContainsRune("=!~<>", c):
			j := i + 1
			if j < len(r) && strings.ContainsRune("=~", r[j]) {
				j++
			}
			out = append(out, string(r[i:j]))
			i = j
		case strings.ContainsRune("(){}[],+-*/%^", c):
			out = append(out, string(c))
			i++
		default:
			return nil, fmt.Errorf("unexpected %q in %q", c, expr)
		}
	}
	return out, nil
}

// isIdent reports whether a token is a name: not a number, string or operator.
func isIdent(t string) bool {
	if t == "" || strings.HasPrefix(t, "$") {
		return false
	}
	c := rune(t[0])
	return c == '_' || c == ':' || unicode.IsLetter(c)
}

func TestParseQueryFindsSelectorsAndGrouping(t *testing.T) {
	q, err := parseQuery(`histogram_quantile(0.99, sum by (le, consumer) (rate(orca_bus_event_age_seconds_bucket{consumer=~"orca-.*"}[$__rate_interval])))`)
	require.NoError(t, err)
	assert.Equal(t, []selector{{"orca_bus_event_age_seconds_bucket", []matcher{{"consumer", "=~", "orca-.*"}}}}, q.selectors)
	assert.Equal(t, []string{"le", "consumer"}, q.grouping)

	q, err = parseQuery(`max by (stream) (orca_stream_bytes) / max by (stream) (orca_stream_max_bytes > 0) > 0.8
		or sum(increase(orca_bus_messages_total{outcome="deadlettered", consumer!='x'}[10m])) > 0 and on(stream) up offset 5m`)
	require.NoError(t, err)
	var names []string
	for _, s := range q.selectors {
		names = append(names, s.metric)
	}
	assert.Equal(t, []string{"orca_stream_bytes", "orca_stream_max_bytes", "orca_bus_messages_total", "up"}, names)
	assert.Equal(t, []matcher{{"outcome", "=", "deadlettered"}, {"consumer", "!=", "x"}}, q.selectors[2].matchers)
	assert.Equal(t, []string{"stream", "stream", "stream"}, q.grouping)

	for _, bad := range []string{`sum(rate(x[5m])`, `{job="x"}`, `rate(x[5m)`, `1 + 2`, `x{a=b}`} {
		_, err := parseQuery(bad)
		assert.Error(t, err, bad)
	}
}
