package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// snapshot is what a browser gets first on /api/events: everything the page
// shows, after which the events only say what changed.
type snapshot struct {
	Graph json.RawMessage      `json:"graph"`
	Tasks map[string]TaskState `json:"tasks"`
	Runs  []Run                `json:"runs"`
}

func (s *Server) getGraph(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	view := s.view
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(view)
}

func (s *Server) getRuns(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	list := s.runs.list()
	out := make([]Run, len(list))
	for i, r := range list {
		out[i] = summary(r)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var run Run
	found := s.runs.byID[r.PathValue("id")]
	if found != nil {
		run = *found
		run.Steps = append([]Step(nil), found.Steps...)
	}
	s.mu.Unlock()
	if found == nil {
		writeError(w, http.StatusNotFound, "no run %q in the last %s of namespace %s", r.PathValue("id"), s.o.History, s.o.Namespace)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// events streams the page's updates as server-sent events: "snapshot" first,
// then "graph" (the whole graph, when a Task or an Ignitor changed), "tasks"
// (the Tasks whose live state changed) and "run" (a run without its steps).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported")
		return
	}
	ch := make(chan sse, 256)
	s.mu.Lock()
	snap := snapshot{Graph: s.view, Tasks: map[string]TaskState{}}
	for k, v := range s.runs.tasks {
		snap.Tasks[k] = v
	}
	for _, run := range s.runs.list() {
		snap.Runs = append(snap.Runs, summary(run))
	}
	first, _ := json.Marshal(snap)
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
		s.mu.Unlock()
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer the stream
	writeEvent(w, sse{"snapshot", first})
	flusher.Flush()
	keepAlive := time.NewTicker(20 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			_, _ = io.WriteString(w, ": keep-alive\n\n")
		case e, open := <-ch:
			if !open {
				return // too slow: the browser reconnects and gets a new snapshot
			}
			writeEvent(w, e)
		}
		flusher.Flush()
	}
}

func writeEvent(w io.Writer, e sse) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.event, e.data)
}

// fireRequest is the body of POST /api/fire.
type fireRequest struct {
	Ignition string `json:"ignition"`
	Data     string `json:"data"`
}

// fireResponse says what was fired.
type fireResponse struct {
	ID      string `json:"id"`
	Run     string `json:"run"`
	Subject string `json:"subject"`
}

// fire publishes an ignition in the namespace, as `orca fire` does.
func (s *Server) fire(w http.ResponseWriter, r *http.Request) {
	var req fireRequest
	body := http.MaxBytesReader(w, r.Body, int64(s.o.MaxData)+4096)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "read the request: %v", err)
		return
	}
	if errs := validation.IsDNS1123Subdomain(req.Ignition); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "ignition %q is not a valid name: %s", req.Ignition, strings.Join(errs, "; "))
		return
	}
	if len(req.Data) > s.o.MaxData {
		writeError(w, http.StatusBadRequest, "the data is %d bytes, over the %d bytes the dispatcher accepts", len(req.Data), s.o.MaxData)
		return
	}
	ig := bus.Ignition{
		ID: uuid.NewString(), Source: "orca/ui", Namespace: s.o.Namespace, Name: req.Ignition,
		Data: []byte(req.Data), Time: time.Now(),
	}
	if err := s.o.Bus.PublishIgnition(r.Context(), ig); err != nil {
		s.log.Error("fire an ignition", "ignition", req.Ignition, "err", err)
		writeError(w, http.StatusBadGateway, "fire %s: %v", req.Ignition, err)
		return
	}
	s.log.Info("ignition fired from the web view", "ignition", req.Ignition, "run", ig.ID)
	writeJSON(w, http.StatusOK, fireResponse{ID: ig.ID, Run: ig.ID, Subject: bus.IgnitionSubject(ig.Namespace, ig.Name)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}
