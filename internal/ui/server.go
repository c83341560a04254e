package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/graph"
)

//go:embed static
var static embed.FS

// Options configure a Server.
type Options struct {
	// Namespace whose workflow the page shows; required.
	Namespace string
	// Config reaches the API server with the user's rights: the Server lists and
	// watches the namespace's Tasks and Ignitors with it.
	Config *rest.Config
	// Bus follows the namespace's events and publishes the ignitions fired from
	// the page.
	Bus *bus.Bus
	// Token must be presented by every request: once in the URL (?token=), which
	// sets a cookie, then by that cookie, or as "Authorization: Bearer <token>".
	// Required; NewToken makes one.
	Token string
	// History is how far back the stream is read for the list of runs; default
	// 24h.
	History time.Duration
	// MaxRuns is how many runs the list keeps; default 100.
	MaxRuns int
	// MaxData is the largest ignition data the page may fire; default 256 KiB.
	MaxData int
	// StartTimeout bounds Start's first read of the cluster; default 30s.
	StartTimeout time.Duration
	// Log receives what goes wrong; default slog.Default().
	Log *slog.Logger
}

// Server serves the web view of one namespace: the workflow graph with its
// Tasks' live states, the recent runs, each run's timeline, and a form to fire
// an ignition. It reads the cluster through one watch of Tasks and Ignitors and
// the bus through one ephemeral consumer, whatever the number of browsers; each
// browser gets updates pushed as server-sent events.
type Server struct {
	o   Options
	log *slog.Logger

	mu    sync.Mutex
	graph *graph.Graph
	view  []byte // the graph as the page draws it (JSON)
	runs  *runs
	subs  map[chan sse]struct{}
}

// sse is one server-sent event.
type sse struct {
	event string
	data  []byte
}

// New returns a Server; Serve runs it.
func New(o Options) (*Server, error) {
	switch {
	case o.Namespace == "":
		return nil, errors.New("web view: no namespace")
	case o.Config == nil || o.Bus == nil:
		return nil, errors.New("web view: needs a kubeconfig and a NATS connection")
	case len(o.Token) < 16:
		return nil, errors.New("web view: the token is missing or shorter than 16 characters")
	}
	if o.History <= 0 {
		o.History = 24 * time.Hour
	}
	if o.MaxRuns <= 0 {
		o.MaxRuns = 100
	}
	if o.MaxData <= 0 {
		o.MaxData = 256 << 10
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Server{
		o: o, log: o.Log.With("component", "ui", "namespace", o.Namespace),
		runs: newRuns(o.MaxRuns), subs: map[chan sse]struct{}{},
	}, nil
}

// Start checks that the user may list the namespace's Tasks and Ignitors,
// reads them, and then keeps watching them and following the namespace's events
// on the bus until ctx ends (also when Start fails). Serve serves the page once
// Start returned.
func (s *Server) Start(ctx context.Context) error {
	if err := s.watchWorkflow(ctx); err != nil {
		return err
	}
	go s.follow(ctx)
	return nil
}

// Serve serves the page on l until ctx ends, then returns nil.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// The event streams end with ctx.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return fmt.Errorf("web view on %s: %w", l.Addr(), err)
	}
}

// Handler returns the page and its API, behind the token.
func (s *Server) Handler() http.Handler {
	files, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(files))
	mux.HandleFunc("GET /api/graph", s.getGraph)
	mux.HandleFunc("GET /api/runs", s.getRuns)
	mux.HandleFunc("GET /api/runs/{id}", s.getRun)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("POST /api/fire", s.fire)
	return s.authenticate(mux)
}
