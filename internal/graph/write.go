package graph

import (
	"fmt"
	"io"
	"strings"
)

// Graph formats.
const (
	FormatMermaid = "mermaid"
	FormatDOT     = "dot"
)

// Write prints the graph in the format (FormatMermaid or FormatDOT).
func (g *Graph) Write(w io.Writer, format string) error {
	var b strings.Builder
	switch format {
	case FormatMermaid:
		g.mermaid(&b)
	case FormatDOT:
		g.dot(&b)
	default:
		return fmt.Errorf("unknown format %q: want %s or %s", format, FormatMermaid, FormatDOT)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (g *Graph) mermaid(b *strings.Builder) {
	b.WriteString("flowchart LR\n")
	classes := map[string][]string{}
	for _, n := range g.Nodes {
		label := mermaidText(n.Name)
		switch n.Kind {
		case NodeIgnitor:
			if n.Scheduled != "" {
				label += "<br/>" + mermaidText(n.Scheduled)
			}
			fmt.Fprintf(b, "  %s([\"%s\"])\n", n.ID, label)
			classes["ignitor"] = append(classes["ignitor"], n.ID)
		case NodeIgnition:
			fmt.Fprintf(b, "  %s([\"%s\"])\n", n.ID, label)
			classes["ignition"] = append(classes["ignition"], n.ID)
		case NodeTask:
			fmt.Fprintf(b, "  %s[\"%s\"]\n", n.ID, label)
		case NodeMissingTask:
			fmt.Fprintf(b, "  %s[\"%s<br/>(no such Task)\"]\n", n.ID, label)
			classes["missing"] = append(classes["missing"], n.ID)
		case NodeJoin:
			fmt.Fprintf(b, "  %s{\"%s\"}\n", n.ID, mermaidText(joinLabel(n)))
			classes["join"] = append(classes["join"], n.ID)
		}
	}
	var failures []string
	for i, e := range g.Edges {
		switch e.Kind {
		case EdgeIgnition, EdgeJoin:
			fmt.Fprintf(b, "  %s --> %s\n", e.From, e.To)
		case EdgeSuccess:
			fmt.Fprintf(b, "  %s -->|success| %s\n", e.From, e.To)
		case EdgeFailure:
			fmt.Fprintf(b, "  %s -.->|failure| %s\n", e.From, e.To)
			failures = append(failures, fmt.Sprint(i))
		case EdgeCondition:
			if e.Label == "failed" {
				fmt.Fprintf(b, "  %s -.->|%s| %s\n", e.From, e.Label, e.To)
				failures = append(failures, fmt.Sprint(i))
				continue
			}
			fmt.Fprintf(b, "  %s -->|%s| %s\n", e.From, e.Label, e.To)
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(b, "  linkStyle %s stroke:red,color:red\n", strings.Join(failures, ","))
	}
	styles := []struct{ class, style string }{
		{"ignitor", "fill:#fff4d6,stroke:#b8860b"},
		{"ignition", "fill:#ffffff,stroke:#b8860b,stroke-dasharray:4 3"},
		{"missing", "fill:#ffffff,stroke:red,stroke-dasharray:4 3"},
		{"join", "fill:#eef2f7,stroke:#5b6678"},
	}
	for _, s := range styles {
		if ids := classes[s.class]; len(ids) > 0 {
			fmt.Fprintf(b, "  classDef %s %s\n", s.class, s.style)
			fmt.Fprintf(b, "  class %s %s\n", strings.Join(ids, ","), s.class)
		}
	}
}

// joinLabel is what a join node shows: its operator, and for any other
// expression (or one that does not compile) the expression, shortened.
func joinLabel(n Node) string {
	if n.Op != "CEL" && n.Op != "invalid" {
		return n.Op
	}
	c := n.Condition
	if r := []rune(c); len(r) > 40 {
		c = string(r[:39]) + "…"
	}
	if n.Op == "invalid" {
		return "invalid: " + c
	}
	return c
}

// mermaidText escapes text for a quoted Mermaid label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(s)
}

func (g *Graph) dot(b *strings.Builder) {
	b.WriteString("digraph orca {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\"];\n")
	for _, n := range g.Nodes {
		switch n.Kind {
		case NodeIgnitor:
			label := n.Name
			if n.Scheduled != "" {
				label += "\n" + n.Scheduled
			}
			fmt.Fprintf(b, "  %s [label=%s, shape=ellipse, style=filled, fillcolor=\"#fff4d6\", color=\"#b8860b\"];\n", n.ID, dotString(label))
		case NodeIgnition:
			fmt.Fprintf(b, "  %s [label=%s, shape=ellipse, style=dashed, color=\"#b8860b\"];\n", n.ID, dotString(n.Name))
		case NodeTask:
			fmt.Fprintf(b, "  %s [label=%s, shape=box, style=rounded];\n", n.ID, dotString(n.Name))
		case NodeMissingTask:
			fmt.Fprintf(b, "  %s [label=%s, shape=box, style=dashed, color=red];\n", n.ID, dotString(n.Name+"\n(no such Task)"))
		case NodeJoin:
			fmt.Fprintf(b, "  %s [label=%s, shape=diamond, style=filled, fillcolor=\"#eef2f7\", color=\"#5b6678\"];\n", n.ID, dotString(joinLabel(n)))
		}
	}
	for _, e := range g.Edges {
		switch e.Kind {
		case EdgeIgnition, EdgeJoin:
			fmt.Fprintf(b, "  %s -> %s;\n", e.From, e.To)
		case EdgeCondition:
			style := ""
			if e.Label == "failed" {
				style = ", style=dashed, color=red, fontcolor=red"
			}
			fmt.Fprintf(b, "  %s -> %s [label=%s%s];\n", e.From, e.To, dotString(e.Label), style)
		case EdgeSuccess:
			fmt.Fprintf(b, "  %s -> %s [label=\"success\"];\n", e.From, e.To)
		case EdgeFailure:
			fmt.Fprintf(b, "  %s -> %s [label=\"failure\", style=dashed, color=red, fontcolor=red];\n", e.From, e.To)
		}
	}
	b.WriteString("}\n")
}

func dotString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
