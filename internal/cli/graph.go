package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// Graph formats.
const (
	FormatMermaid = "mermaid"
	FormatDOT     = "dot"
)

// NodeKind says what a node of the workflow graph is.
type NodeKind int

// Node kinds, in the order the graph lists them.
const (
	// NodeIgnitor is an Ignitor: an ignition fired on a schedule.
	NodeIgnitor NodeKind = iota
	// NodeIgnition is an ignition name that Tasks start on but no Ignitor has:
	// fired from outside (orca fire, external publishers).
	NodeIgnition
	// NodeTask is a Task.
	NodeTask
	// NodeMissingTask is a name in startOnSuccess or startOnFailure that no Task has.
	NodeMissingTask
)

// EdgeKind says what starts the target Task.
type EdgeKind int

// Edge kinds, in the order the graph lists them.
const (
	EdgeIgnition EdgeKind = iota
	EdgeSuccess
	EdgeFailure
)

// Node is a node of the workflow graph.
type Node struct {
	// ID is unique in the graph and safe in Mermaid and DOT.
	ID   string
	Name string
	Kind NodeKind
	// Scheduled is an Ignitor's schedule.
	Scheduled string
}

// Edge says that From starting (ignition) or ending (success, failure) starts To.
type Edge struct {
	From, To string // node IDs
	Kind     EdgeKind
}

// WorkflowGraph is the workflow of a namespace: sorted nodes (ignitions, then
// tasks, each by name) and sorted edges (ignition, then success, then failure
// edges, each by source and target name).
type WorkflowGraph struct {
	Nodes []Node
	Edges []Edge
}

// BuildGraph builds the graph of the Tasks and Ignitors of one namespace.
func BuildGraph(tasks []orcav1.Task, ignitors []orcav1.Ignitor) *WorkflowGraph {
	type key struct {
		ignition bool
		name     string
	}
	nodes := map[key]*Node{}
	add := func(ignition bool, name string, kind NodeKind) *Node {
		k := key{ignition, name}
		if n, ok := nodes[k]; ok {
			return n
		}
		n := &Node{Name: name, Kind: kind}
		nodes[k] = n
		return n
	}
	for _, ig := range ignitors {
		add(true, ig.Name, NodeIgnitor).Scheduled = ig.Spec.Scheduled
	}
	for _, t := range tasks {
		add(false, t.Name, NodeTask).Kind = NodeTask
	}
	type rawEdge struct {
		from key
		to   string
		kind EdgeKind
	}
	var raw []rawEdge
	for _, t := range tasks {
		for _, n := range t.Spec.StartOnIgnition {
			add(true, string(n), NodeIgnition)
			raw = append(raw, rawEdge{key{true, string(n)}, t.Name, EdgeIgnition})
		}
		for _, n := range t.Spec.StartOnSuccess {
			add(false, string(n), NodeMissingTask)
			raw = append(raw, rawEdge{key{false, string(n)}, t.Name, EdgeSuccess})
		}
		for _, n := range t.Spec.StartOnFailure {
			add(false, string(n), NodeMissingTask)
			raw = append(raw, rawEdge{key{false, string(n)}, t.Name, EdgeFailure})
		}
	}

	g := &WorkflowGraph{}
	keys := make([]key, 0, len(nodes))
	for k := range nodes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.ignition != b.ignition {
			if a.ignition {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.name, b.name)
	})
	used := map[string]bool{}
	for _, k := range keys {
		n := nodes[k]
		prefix := "task_"
		if k.ignition {
			prefix = "ignition_"
		}
		n.ID = uniqueID(prefix+unsafeID.ReplaceAllString(k.name, "_"), used)
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(raw, func(a, b rawEdge) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.from.name, b.from.name), cmp.Compare(a.to, b.to))
	})
	raw = slices.Compact(raw)
	for _, e := range raw {
		g.Edges = append(g.Edges, Edge{From: nodes[e.from].ID, To: nodes[key{false, e.to}].ID, Kind: e.kind})
	}
	return g
}

var unsafeID = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func uniqueID(id string, used map[string]bool) string {
	out := id
	for i := 2; used[out]; i++ {
		out = fmt.Sprintf("%s_%d", id, i)
	}
	used[out] = true
	return out
}

// Write prints the graph in the format (FormatMermaid or FormatDOT).
func (g *WorkflowGraph) Write(w io.Writer, format string) error {
	var b strings.Builder
	switch format {
	case FormatMermaid:
		g.mermaid(&b)
	case FormatDOT:
		g.dot(&b)
	default:
		return usageErrorf("unknown format %q: want %s or %s", format, FormatMermaid, FormatDOT)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (g *WorkflowGraph) mermaid(b *strings.Builder) {
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
		}
	}
	var failures []string
	for i, e := range g.Edges {
		switch e.Kind {
		case EdgeIgnition:
			fmt.Fprintf(b, "  %s --> %s\n", e.From, e.To)
		case EdgeSuccess:
			fmt.Fprintf(b, "  %s -->|success| %s\n", e.From, e.To)
		case EdgeFailure:
			fmt.Fprintf(b, "  %s -.->|failure| %s\n", e.From, e.To)
			failures = append(failures, fmt.Sprint(i))
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(b, "  linkStyle %s stroke:red,color:red\n", strings.Join(failures, ","))
	}
	styles := []struct{ class, style string }{
		{"ignitor", "fill:#fff4d6,stroke:#b8860b"},
		{"ignition", "fill:#ffffff,stroke:#b8860b,stroke-dasharray:4 3"},
		{"missing", "fill:#ffffff,stroke:red,stroke-dasharray:4 3"},
	}
	for _, s := range styles {
		if ids := classes[s.class]; len(ids) > 0 {
			fmt.Fprintf(b, "  classDef %s %s\n", s.class, s.style)
			fmt.Fprintf(b, "  class %s %s\n", strings.Join(ids, ","), s.class)
		}
	}
}

// mermaidText escapes text for a quoted Mermaid label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(s)
}

func (g *WorkflowGraph) dot(b *strings.Builder) {
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
		}
	}
	for _, e := range g.Edges {
		switch e.Kind {
		case EdgeIgnition:
			fmt.Fprintf(b, "  %s -> %s;\n", e.From, e.To)
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

// GraphOptions configure Graph.
type GraphOptions struct {
	Kube      KubeOptions
	Namespace string
	// Format is FormatMermaid (default) or FormatDOT.
	Format string
	// Timeout bounds reading from the cluster; default 10s.
	Timeout time.Duration
}

// Graph reads the Tasks and Ignitors of a namespace and prints their workflow
// graph to stdout; a note goes to stderr when the namespace has neither.
func Graph(ctx context.Context, stdout, stderr io.Writer, o GraphOptions) error {
	if o.Format == "" {
		o.Format = FormatMermaid
	}
	if o.Format != FormatMermaid && o.Format != FormatDOT {
		return usageErrorf("unknown --format %q: want %s or %s", o.Format, FormatMermaid, FormatDOT)
	}
	if err := validateName("namespace", o.Namespace, true); err != nil {
		return err
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	c, host, err := o.Kube.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var tasks orcav1.TaskList
	if err := c.List(ctx, &tasks, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("list Tasks in namespace %s on %s: %w", o.Namespace, host, explainKube(err))
	}
	var ignitors orcav1.IgnitorList
	if err := c.List(ctx, &ignitors, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("list Ignitors in namespace %s on %s: %w", o.Namespace, host, explainKube(err))
	}
	if len(tasks.Items) == 0 && len(ignitors.Items) == 0 {
		fmt.Fprintf(stderr, "note: namespace %s has no Tasks and no Ignitors (pass -n to choose another)\n", o.Namespace)
	}
	return BuildGraph(tasks.Items, ignitors.Items).Write(stdout, o.Format)
}

func graphCmd(ctx context.Context, c *cmdEnv, args []string) error {
	fs := newFlagSet("graph")
	var o GraphOptions
	o.Kube.bindFlags(fs)
	var ns string
	fs.StringVar(&ns, "n", "", "namespace (default: the kubeconfig context's, else default)")
	fs.StringVar(&ns, "namespace", "", "same as -n")
	fs.StringVar(&o.Format, "format", FormatMermaid, "output format: mermaid or dot")
	fs.StringVar(&o.Format, "o", FormatMermaid, "same as --format")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "how long to wait for the cluster")
	pos, err := parse(c, fs, "graph [-n NAMESPACE] [--format mermaid|dot]",
		`Reads the Tasks and Ignitors of a namespace and prints the workflow graph:
ignitions (Ignitors with their schedule, and dashed: names that Tasks start on
but no Ignitor has) and Tasks, with an edge from an ignition to each Task that
starts on it and from a Task to each Task that starts on its success or (dashed,
red) its failure. The output is sorted: the same objects print the same graph.

Examples:
  orca graph -n default > workflow.mmd
  orca graph --format dot | dot -Tsvg > workflow.svg
`, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("graph takes no arguments, got %q", pos)
	}
	o.Namespace = o.Kube.resolveNamespace(ns)
	return Graph(ctx, c.stdout, c.stderr, o)
}
