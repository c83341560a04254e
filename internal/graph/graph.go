package graph

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
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

var nodeKindNames = [...]string{"ignitor", "ignition", "task", "missing"}

// String returns ignitor, ignition, task or missing: the node's kind in JSON.
func (k NodeKind) String() string {
	if int(k) < len(nodeKindNames) {
		return nodeKindNames[k]
	}
	return fmt.Sprintf("NodeKind(%d)", int(k))
}

// MarshalText writes the kind as String does.
func (k NodeKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// EdgeKind says what starts the target Task.
type EdgeKind int

// Edge kinds, in the order the graph lists them.
const (
	EdgeIgnition EdgeKind = iota
	EdgeSuccess
	EdgeFailure
)

var edgeKindNames = [...]string{"ignition", "success", "failure"}

// String returns ignition, success or failure: the edge's kind in JSON.
func (k EdgeKind) String() string {
	if int(k) < len(edgeKindNames) {
		return edgeKindNames[k]
	}
	return fmt.Sprintf("EdgeKind(%d)", int(k))
}

// MarshalText writes the kind as String does.
func (k EdgeKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Node is a node of the workflow graph.
type Node struct {
	// ID is unique in the graph and safe in Mermaid and DOT.
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Kind NodeKind `json:"kind"`
	// Scheduled is an Ignitor's schedules, "; "-separated, and "(suspended)"
	// when it is.
	Scheduled string `json:"scheduled,omitempty"`
}

// Edge says that From starting (ignition) or ending (success, failure) starts To.
type Edge struct {
	From string   `json:"from"` // node IDs
	To   string   `json:"to"`
	Kind EdgeKind `json:"kind"`
}

// Graph is the workflow of a namespace: sorted nodes (ignitions, then
// tasks, each by name) and sorted edges (ignition, then success, then failure
// edges, each by source and target name).
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Build builds the graph of the Tasks and Ignitors of one namespace.
func Build(tasks []orcav1.Task, ignitors []orcav1.Ignitor) *Graph {
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
		add(true, ig.Name, NodeIgnitor).Scheduled = scheduleOf(ig.Spec)
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

	g := &Graph{}
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

// Starts returns the names of the Tasks that the ignition name starts (kind
// EdgeIgnition), or that the success or failure of the Task name starts.
func (g *Graph) Starts(kind EdgeKind, name string) []string {
	from := map[string]bool{}
	names := map[string]string{}
	for _, n := range g.Nodes {
		names[n.ID] = n.Name
		ignition := n.Kind == NodeIgnitor || n.Kind == NodeIgnition
		if n.Name == name && ignition == (kind == EdgeIgnition) {
			from[n.ID] = true
		}
	}
	var out []string
	for _, e := range g.Edges {
		if e.Kind == kind && from[e.From] {
			out = append(out, names[e.To])
		}
	}
	return out
}

// scheduleOf says when an Ignitor fires: its schedules, and whether it is
// suspended.
func scheduleOf(spec orcav1.IgnitorSpec) string {
	all := []string{spec.Scheduled}
	for _, s := range spec.Schedules {
		all = append(all, string(s))
	}
	out := strings.Join(all, "; ")
	if spec.Suspend {
		out += " (suspended)"
	}
	return out
}
