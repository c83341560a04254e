package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// apiCounts is the API server's request count by "VERB resource[/subresource]"
// (and the code when it is not 2xx), from its apiserver_request_total metric;
// watches are left out.
type apiCounts map[string]float64

func (c *cluster) apiCounts(ctx context.Context) (apiCounts, error) {
	data, err := c.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	out := apiCounts{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(line, "} ")
		if !ok {
			continue
		}
		l := parseLabels(labels)
		if l["verb"] == "WATCH" || l["resource"] == "" {
			continue
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		if code := l["code"]; code != "" && !strings.HasPrefix(code, "2") {
			key += " (" + code + ")"
		}
		v, err := strconv.ParseFloat(value, 64)
		if err == nil {
			out[key] += v
		}
	}
	return out, sc.Err()
}

// parseLabels parses `a="x",b="y"` (values hold no quotes in this metric).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, `="`)
		if !ok {
			break
		}
		value, rest, _ := strings.Cut(rest, `"`)
		out[name] = value
		s = strings.TrimPrefix(rest, ",")
	}
	return out
}

// since returns the requests made between before and a.
func (a apiCounts) since(before apiCounts) apiCounts {
	out := apiCounts{}
	for k, v := range a {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// add adds b to a.
func (a apiCounts) add(b apiCounts) {
	for k, v := range b {
		a[k] += v
	}
}

// per returns the requests per unit (e.g. per hop), the most frequent first.
func (a apiCounts) per(n float64) string {
	keys := make([]string, 0, len(a))
	total := 0.0
	for k, v := range a {
		keys = append(keys, k)
		total += v
	}
	slices.SortFunc(keys, func(x, y string) int {
		if a[x] != a[y] {
			if a[x] > a[y] {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	parts := []string{fmt.Sprintf("%.1f in all", total/n)}
	for _, k := range keys {
		if v := a[k] / n; v >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

// profileAPIServer takes a CPU profile of kube-apiserver over the next seconds in
// the background and writes it to path (nothing when path is empty); the returned
// function waits for it.
func (c *cluster) profileAPIServer(ctx context.Context, path string, seconds int) func() error {
	if path == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		data, err := c.cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(seconds)).DoRaw(ctx)
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		done <- err
	}()
	return func() error { return <-done }
}
