package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// stat summarises samples: p50 and p99 by nearest rank.
type stat struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

func summarize(samples []float64) stat {
	if len(samples) == 0 {
		return stat{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return stat{N: len(s), P50: rank(0.50), P99: rank(0.99)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// row is one line of the table: a measurement of Orca (or of a peer) against its
// baseline of the same run. Ratios are value / baseline.
type row struct {
	Case     string  `json:"case"`
	Measured string  `json:"measured"`
	Unit     string  `json:"unit"`
	Value    stat    `json:"value"`
	Baseline string  `json:"baseline,omitempty"`
	Base     *stat   `json:"baselineValue,omitempty"`
	RatioP50 float64 `json:"ratioP50,omitempty"`
	RatioP99 float64 `json:"ratioP99,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

// report collects the rows and the run's facts.
type report struct {
	Started  time.Time         `json:"started"`
	Duration string            `json:"duration"`
	Machine  map[string]string `json:"machine"`
	Flags    map[string]string `json:"flags"`
	Rows     []row             `json:"rows"`
	Notes    []string          `json:"notes,omitempty"`
}

// add appends a row with a baseline; target (if any) decides met from the ratio of
// the p50s: met when ratio <= maxRatio (lower is better) or >= minRatio.
func (r *report) add(c, measured, unit string, v stat, baseline string, base *stat, target string, ok func(ratio float64) bool) {
	if v.N == 0 {
		return // nothing measured (e.g. no one-shot Ignitor fitted in the window)
	}
	rw := row{Case: c, Measured: measured, Unit: unit, Value: v, Baseline: baseline, Base: base, Target: target}
	if base != nil && base.P50 != 0 {
		rw.RatioP50 = round3(v.P50 / base.P50)
		if base.P99 != 0 {
			rw.RatioP99 = round3(v.P99 / base.P99)
		}
		if ok != nil {
			met := ok(v.P50 / base.P50)
			rw.Met = &met
		}
	}
	r.Rows = append(r.Rows, rw)
	fmt.Fprintf(os.Stderr, "  %s: %s p50 %.4g p99 %.4g %s", c, measured, v.P50, v.P99, unit)
	if base != nil {
		fmt.Fprintf(os.Stderr, " | %s p50 %.4g p99 %.4g | ratio %s", baseline, base.P50, base.P99, ratio(rw.RatioP50))
	}
	fmt.Fprintln(os.Stderr)
}

// addValue appends a row judged against a fixed limit rather than a baseline.
func (r *report) addValue(c, measured, unit string, v stat, target string, met bool) {
	r.Rows = append(r.Rows, row{Case: c, Measured: measured, Unit: unit, Value: v, Target: target, Met: &met})
	fmt.Fprintf(os.Stderr, "  %s: %s %.4g %s (%s)\n", c, measured, v.P50, unit, target)
}

func (r *report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func round(f float64) float64 { return math.Round(f*100) / 100 }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// ratio formats a ratio with 3 decimals below 10: enough to see which side of a
// target such as 1.5x it falls.
func ratio(f float64) string {
	if f >= 10 {
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.3f", f)
}

func num(f float64) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return "-"
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

// cells returns a row's columns as the table prints them; no is the word for a
// missed target.
func (rw *row) cells(no string) []string {
	ratio50, ratio99, b50, b99 := "-", "-", "-", "-"
	if rw.Base != nil {
		ratio50, ratio99 = ratio(rw.RatioP50), ratio(rw.RatioP99)
		b50, b99 = num(rw.Base.P50), num(rw.Base.P99)
	}
	met := ""
	if rw.Met != nil {
		met = map[bool]string{true: "yes", false: no}[*rw.Met]
	}
	return []string{rw.Case, fmt.Sprintf("%s (%s)", rw.Measured, rw.Unit), ratio50, ratio99,
		num(rw.Value.P50), num(rw.Value.P99), fmt.Sprint(rw.Value.N), rw.Baseline, b50, b99, rw.Target, met}
}

const tableHeader = "case|measured|ratio p50|ratio p99|p50|p99|n|baseline (same run)|base p50|base p99|target|met"

// print writes the table: ratios first, then the values they come from.
func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, strings.ReplaceAll(tableHeader, "|", "\t"))
	for i := range r.Rows {
		fmt.Fprintln(tw, strings.Join(r.Rows[i].cells("NO"), "\t"))
	}
	_ = tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// markdown writes the table as Markdown, for the README.
func (r *report) markdown(w io.Writer) {
	fmt.Fprintln(w, "| "+strings.ReplaceAll(tableHeader, "|", " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat(" --- |", strings.Count(tableHeader, "|")+1))
	for i := range r.Rows {
		fmt.Fprintln(w, "| "+strings.Join(r.Rows[i].cells("**no**"), " | ")+" |")
	}
}

func (r *report) writeJSON(path string) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
