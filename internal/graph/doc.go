// Package graph is the workflow of a namespace as a graph: ignitions (Ignitors,
// and names that Tasks start on but no Ignitor has) and Tasks, with an edge from
// an ignition to each Task it starts and from a Task to each Task its success or
// its failure starts. `orca graph` writes it as Mermaid or DOT; the web view
// (package ui) draws it from Layout.
//
// Build sorts everything, so that the same objects always give the same graph.
package graph
