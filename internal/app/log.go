package app

import (
	"context"
	"io"
	"log/slog"
	"os"
)

// NewLogger returns the services' slog logger on stderr, in format text or json,
// logging level and above.
func NewLogger(format string, level slog.Level) *slog.Logger {
	return slog.New(newHandler(os.Stderr, format, level))
}

func newHandler(w io.Writer, format string, level slog.Level) slog.Handler {
	o := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return quietMachinery{slog.NewJSONHandler(w, o)}
	}
	return quietMachinery{slog.NewTextHandler(w, o)}
}

// machinery are the messages that controller-runtime logs at info level each
// time a manager starts or stops: they say nothing about workflows, so they are
// logged at debug level.
var machinery = map[string]bool{
	"Starting EventSource":                                        true,
	"Starting Controller":                                         true,
	"Starting workers":                                            true,
	"Starting metrics server":                                     true,
	"Serving metrics server":                                      true,
	"starting server":                                             true, // the health probes
	"shutting down server":                                        true,
	"All workers finished":                                        true,
	"Stopping and waiting for caches":                             true,
	"Stopping and waiting for webhooks":                           true,
	"Stopping and waiting for HTTP servers":                       true,
	"Stopping and waiting for warmup runnables":                   true,
	"Stopping and waiting for leader election runnables":          true,
	"Stopping and waiting for non leader election runnables":      true,
	"Shutdown signal received, waiting for all workers to finish": true,
	"Shutting down metrics server with timeout of 1 minute":       true,
	"Wait completed, proceeding to shutdown the manager":          true,
}

// quietMachinery logs the machinery messages at debug level.
type quietMachinery struct{ slog.Handler }

func (h quietMachinery) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && machinery[r.Message] {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietMachinery) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietMachinery{h.Handler.WithAttrs(attrs)}
}

func (h quietMachinery) WithGroup(name string) slog.Handler {
	return quietMachinery{h.Handler.WithGroup(name)}
}
