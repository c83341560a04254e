package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/graph"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

// graphView is the graph as the page draws it.
type graphView struct {
	Namespace string         `json:"namespace"`
	Nodes     []graph.Placed `json:"nodes"`
	Edges     []edgeView     `json:"edges"`
}

type edgeView struct {
	graph.Edge
	// Back marks an edge that closes a cycle (a retry loop): drawn around the nodes.
	Back bool `json:"back,omitempty"`
}

// watchWorkflow checks that the user may list the namespace's Tasks and
// Ignitors, then watches them and rebuilds the graph on every change, until
// ctx ends. It returns once the graph is built.
func (s *Server) watchWorkflow(ctx context.Context) error {
	c, err := client.New(s.o.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	startCtx, cancel := context.WithTimeout(ctx, s.o.StartTimeout)
	defer cancel()
	// A plain list first: a missing right or CRD gives its error here, where the
	// watch below would only retry.
	for _, l := range []struct {
		kind string
		list client.ObjectList
	}{{"Tasks", &orcav1.TaskList{}}, {"Ignitors", &orcav1.IgnitorList{}}} {
		if err := c.List(startCtx, l.list, client.InNamespace(s.o.Namespace), client.Limit(1)); err != nil {
			return fmt.Errorf("web view: list %s in namespace %s on %s: %w", l.kind, s.o.Namespace, s.o.Config.Host, err)
		}
	}
	ch, err := cache.New(s.o.Config, cache.Options{
		Scheme:            scheme.New(),
		DefaultNamespaces: map[string]cache.Config{s.o.Namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return fmt.Errorf("web view: cache: %w", err)
	}
	rebuild := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.rebuild(ctx, ch) },
		UpdateFunc: func(any, any) { s.rebuild(ctx, ch) },
		DeleteFunc: func(any) { s.rebuild(ctx, ch) },
	}
	for _, obj := range []client.Object{&orcav1.Task{}, &orcav1.Ignitor{}} {
		inf, err := ch.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("web view: watch %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(rebuild); err != nil {
			return fmt.Errorf("web view: watch %T: %w", obj, err)
		}
	}
	go func() {
		if err := ch.Start(ctx); err != nil {
			s.log.Error("watch the workflow", "err", err)
		}
	}()
	if !ch.WaitForCacheSync(startCtx) {
		return fmt.Errorf("web view: the Tasks and Ignitors of namespace %s were not read within %s", s.o.Namespace, s.o.StartTimeout)
	}
	s.rebuild(ctx, ch)
	return nil
}

// rebuild builds the graph from the cache and sends it to the browsers when it
// changed (a Task's status changes often, its graph seldom).
func (s *Server) rebuild(ctx context.Context, r client.Reader) {
	var tasks orcav1.TaskList
	var ignitors orcav1.IgnitorList
	if err := r.List(ctx, &tasks, client.InNamespace(s.o.Namespace)); err != nil {
		return // the cache is not synced yet: the sync's own rebuild comes later
	}
	if err := r.List(ctx, &ignitors, client.InNamespace(s.o.Namespace)); err != nil {
		return
	}
	g := graph.Build(tasks.Items, ignitors.Items)
	nodes, back := g.Layout()
	v := graphView{Namespace: s.o.Namespace, Nodes: nodes, Edges: make([]edgeView, len(g.Edges))}
	for i, e := range g.Edges {
		v.Edges[i] = edgeView{Edge: e, Back: back[i]}
	}
	data, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytes.Equal(data, s.view) {
		return
	}
	s.graph, s.view = g, data
	s.broadcast(sse{"graph", data})
}

// follow reads the namespace's events from the stream, History back and then
// live, until ctx ends; after a lost connection it follows again from where it
// stopped.
func (s *Server) follow(ctx context.Context) {
	subjects := bus.NamespaceSubjects(s.o.Namespace)
	since := time.Now().Add(-s.o.History)
	var last uint64
	for failures := 1; ctx.Err() == nil; failures++ {
		err := s.o.Bus.Follow(ctx, bus.FollowOptions{
			Subjects: subjects,
			Since:    since,
			Started:  func() { failures = 0 },
		}, func(seen bus.Seen) {
			if seen.Sequence <= last {
				return // read again after a reconnection
			}
			last, since = seen.Sequence, seen.Stored
			s.apply(seen)
		})
		if ctx.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if errors.Is(err, bus.ErrNoStream) {
			level = slog.LevelDebug // the services create it as they start
		}
		s.log.Log(ctx, level, "follow the events, will retry", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(failures)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

// apply records an event and tells the browsers what changed.
func (s *Server) apply(seen bus.Seen) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run, changed := s.runs.apply(seen, s.graph)
	if run == nil {
		return
	}
	states := map[string]TaskState{}
	for _, t := range changed {
		states[t] = s.runs.tasks[t]
	}
	if len(states) > 0 {
		data, _ := json.Marshal(states)
		s.broadcast(sse{"tasks", data})
	}
	data, _ := json.Marshal(summary(run))
	s.broadcast(sse{"run", data})
}

// summary is a run without its steps, for the list.
func summary(r *Run) Run {
	out := *r
	out.Steps = nil
	return out
}

// broadcast sends an event to every browser; one that does not keep up is
// dropped (its EventSource reconnects and starts again from a snapshot). The
// caller holds s.mu.
func (s *Server) broadcast(e sse) {
	for ch := range s.subs {
		select {
		case ch <- e:
		default:
			delete(s.subs, ch)
			close(ch)
		}
	}
}
