// Package ui is Orca's web view, served by `orca ui` and `orca run`: one page
// that draws a namespace's workflow (package graph) with each Task's live state,
// lists the recent runs, opens a run as the timeline of its steps, and fires an
// ignition with data.
//
// The Server reads the cluster through one watch of the namespace's Tasks and
// Ignitors, made with the user's kubeconfig, so the page shows only what the
// user may list; and the bus through one ephemeral consumer (bus.Follow) over
// the namespace's events, replayed from the stream for the list of runs and then
// followed live. Browsers get the changes pushed as server-sent events: no
// browser polls the API server or NATS.
//
// The page is a few static files embedded in the binary: plain JavaScript that
// draws SVG, no framework. Every request needs the Server's token (see
// Options.Token); the command binds the loopback interface unless told otherwise.
package ui
