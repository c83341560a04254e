package graph

import (
	"cmp"
	"slices"
)

// Placed is a node with its place in a left-to-right drawing: columns from the
// ignitions on the left, rows from the top within a column.
type Placed struct {
	Node
	Column int `json:"column"`
	Row    int `json:"row"`
}

// Layout places the nodes in columns and rows for a drawing from left to right.
// A node's column is one more than the largest column of the nodes whose edges
// lead to it, once the edges that close a cycle (a retry loop, a Task naming
// itself on failure) are set aside; ignitions and Tasks that nothing starts are
// in column 0. Within a column, nodes are ordered by the rows of the nodes that
// lead to them, so that edges cross less. Back edges reports, by index in
// g.Edges, the edges set aside: a drawing routes them around the nodes.
func (g *Graph) Layout() (nodes []Placed, back map[int]bool) {
	index := map[string]int{}
	for i, n := range g.Nodes {
		index[n.ID] = i
	}
	out := make([][]int, len(g.Nodes)) // edge indexes by source node
	for i, e := range g.Edges {
		out[index[e.From]] = append(out[index[e.From]], i)
	}

	// Depth-first from each node in order (ignitions first): an edge to a node on
	// the current path closes a cycle.
	back = map[int]bool{}
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(g.Nodes))
	var visit func(n int)
	visit = func(n int) {
		state[n] = onPath
		for _, ei := range out[n] {
			to := index[g.Edges[ei].To]
			switch state[to] {
			case onPath:
				back[ei] = true
			case unseen:
				visit(to)
			}
		}
		state[n] = done
	}
	for n := range g.Nodes {
		if state[n] == unseen {
			visit(n)
		}
	}

	// Longest path over the forward edges, in topological order (Kahn).
	in := make([]int, len(g.Nodes))
	for i, e := range g.Edges {
		if !back[i] {
			in[index[e.To]]++
		}
	}
	column := make([]int, len(g.Nodes))
	var queue []int
	for n := range g.Nodes {
		if in[n] == 0 {
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, ei := range out[n] {
			if back[ei] {
				continue
			}
			to := index[g.Edges[ei].To]
			column[to] = max(column[to], column[n]+1)
			if in[to]--; in[to] == 0 {
				queue = append(queue, to)
			}
		}
	}

	// Rows: column by column, by the mean row of the nodes leading in (the
	// barycenter heuristic), ties in graph order.
	width := slices.Max(append(column, 0)) + 1
	byColumn := make([][]int, width)
	for n := range g.Nodes {
		byColumn[column[n]] = append(byColumn[column[n]], n)
	}
	row := make([]int, len(g.Nodes))
	for c, col := range byColumn {
		weight := map[int]float64{}
		for _, n := range col {
			sum, count := 0.0, 0
			for i, e := range g.Edges {
				if from := index[e.From]; index[e.To] == n && !back[i] && column[from] < c {
					sum += float64(row[from])
					count++
				}
			}
			weight[n] = float64(n) / float64(len(g.Nodes)+1) // graph order among equals
			if count > 0 {
				weight[n] += sum / float64(count)
			}
		}
		slices.SortStableFunc(col, func(a, b int) int { return cmp.Compare(weight[a], weight[b]) })
		for r, n := range col {
			row[n] = r
		}
	}

	nodes = make([]Placed, len(g.Nodes))
	for i, n := range g.Nodes {
		nodes[i] = Placed{Node: n, Column: column[i], Row: row[i]}
	}
	return nodes, back
}
