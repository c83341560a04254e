package graph

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/join"
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
	// NodeMissingTask is a name in startOnSuccess or startOnFailure (or a
	// condition) that no Task has.
	NodeMissingTask
	// NodeJoin is the startWhen condition of a Task: the Tasks it names lead to
	// it, and it to its Task.
	NodeJoin
)

var nodeKindNames = [...]string{"ignitor", "ignition", "task", "missing", "join"}

// String returns ignitor, ignition, task, missing or join: the node's kind in JSON.
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
	// EdgeCondition leads from a Task to a join that names it; its Label says
	// what the condition reads of the Task's result (succeeded, failed, skipped,
	// done, or result).
	EdgeCondition
	// EdgeJoin leads from a join to its Task.
	EdgeJoin
)

var edgeKindNames = [...]string{"ignition", "success", "failure", "condition", "join"}

// String returns ignition, success, failure, condition or join: the edge's kind
// in JSON.
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
	// Op is a join's operator: AND, OR, NOT, ALL DONE, CEL (any other
	// expression), or invalid (a condition that does not compile).
	Op string `json:"op,omitempty"`
	// Condition is a join's CEL expression (a shorthand expanded).
	Condition string `json:"condition,omitempty"`
}

// Edge says that From starting (ignition) or ending (success, failure) starts To,
// or that a join reads From's result (condition) or starts To (join).
type Edge struct {
	From string   `json:"from"` // node IDs
	To   string   `json:"to"`
	Kind EdgeKind `json:"kind"`
	// Label is what a condition edge reads of its Task's result.
	Label string `json:"label,omitempty"`
}

// Graph is the workflow of a namespace: sorted nodes (ignitions, then tasks,
// then joins, each by name) and sorted edges (ignition, success, failure,
// condition, then join edges, each by source and target name).
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Build builds the graph of the Tasks and Ignitors of one namespace.
func Build(tasks []orcav1.Task, ignitors []orcav1.Ignitor) *Graph {
	type key struct {
		ignition bool
		join     bool
		name     string
	}
	nodes := map[key]*Node{}
	add := func(ignition bool, name string, kind NodeKind) *Node {
		k := key{ignition: ignition, join: kind == NodeJoin, name: name}
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
		from  key
		to    key
		kind  EdgeKind
		label string
	}
	var raw []rawEdge
	for _, t := range tasks {
		to := key{name: t.Name}
		for _, n := range t.Spec.StartOnIgnition {
			add(true, string(n), NodeIgnition)
			raw = append(raw, rawEdge{key{ignition: true, name: string(n)}, to, EdgeIgnition, ""})
		}
		for _, n := range t.Spec.StartOnSuccess {
			add(false, string(n), NodeMissingTask)
			raw = append(raw, rawEdge{key{name: string(n)}, to, EdgeSuccess, ""})
		}
		for _, n := range t.Spec.StartOnFailure {
			add(false, string(n), NodeMissingTask)
			raw = append(raw, rawEdge{key{name: string(n)}, to, EdgeFailure, ""})
		}
		if t.Spec.StartWhen == nil {
			continue
		}
		j := add(false, t.Name, NodeJoin)
		jk := key{join: true, name: t.Name}
		raw = append(raw, rawEdge{jk, to, EdgeJoin, ""})
		j.Condition, _ = join.Source(t.Spec.StartWhen)
		p, err := join.Compile(t.Spec.StartWhen)
		if err != nil {
			j.Op = "invalid"
			continue
		}
		j.Op = string(p.Op)
		for _, n := range p.Tasks {
			add(false, n, NodeMissingTask)
			raw = append(raw, rawEdge{key{name: n}, jk, EdgeCondition, p.Reads[n]})
		}
	}

	g := &Graph{}
	keys := make([]key, 0, len(nodes))
	for k := range nodes {
		keys = append(keys, k)
	}
	rank := func(k key) int {
		switch {
		case k.ignition:
			return 0
		case k.join:
			return 2
		}
		return 1
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.name, b.name))
	})
	used := map[string]bool{}
	for _, k := range keys {
		n := nodes[k]
		prefix := "task_"
		switch {
		case k.ignition:
			prefix = "ignition_"
		case k.join:
			prefix = "join_"
		}
		n.ID = uniqueID(prefix+unsafeID.ReplaceAllString(k.name, "_"), used)
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(raw, func(a, b rawEdge) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.from.name, b.from.name), cmp.Compare(a.to.name, b.to.name))
	})
	raw = slices.Compact(raw)
	for _, e := range raw {
		g.Edges = append(g.Edges, Edge{From: nodes[e.from].ID, To: nodes[e.to].ID, Kind: e.kind, Label: e.label})
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
		if n.Name == name && n.Kind != NodeJoin && ignition == (kind == EdgeIgnition) {
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
