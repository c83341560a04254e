package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
)

// Plugin runs the Actions whose spec selects it.
type Plugin interface {
	// Selected reports whether spec selects this plugin.
	Selected(spec *orcav1.ActionSpec) bool
	// Run runs the Action for one task event. An error made with Misconfigured
	// says that the Action cannot run as it is written; any other error that the
	// run failed.
	Run(ctx context.Context, r Run) error
}

// Run is one run of an Action for a task event.
type Run struct {
	// Action being run.
	Action *orcav1.Action
	// Task whose event this is; the Action is in its namespace.
	Task *orcav1.Task
	// Delivery is the task event: its CloudEvent as received and its decoded data.
	Delivery *bus.Delivery
}

// Deps are what plugins may use.
type Deps struct {
	// Reader reads uncached, e.g. the Secrets of a Task's namespace.
	Reader client.Reader
	// Bus publishes to NATS.
	Bus *bus.Bus
	// HTTPClient sends HTTP requests, within the webhook egress policy.
	HTTPClient *http.Client
	// NATSSubjects are the subject patterns the nats plugin may publish to
	// ({namespace} is the Action's); empty means any.
	NATSSubjects []string
	// RetryBackoff is the first wait before a retry; it doubles after each one.
	RetryBackoff time.Duration
	// Log is the service's logger.
	Log *slog.Logger
}

// factory makes a plugin from its dependencies.
type factory func(Deps) Plugin

type registration struct {
	name string
	make factory
}

// registrations lists the plugins in the order of their registration.
var registrations []registration

// register adds a plugin under name; each plugin's file calls it from init.
func register(name string, f factory) {
	for _, r := range registrations {
		if r.name == name {
			panic("actions: plugin " + name + " registered twice")
		}
	}
	registrations = append(registrations, registration{name: name, make: f})
}

type namedPlugin struct {
	name   string
	plugin Plugin
}

// registry holds one instance of every registered plugin.
type registry struct {
	plugins []namedPlugin
}

func newRegistry(d Deps) *registry {
	r := &registry{}
	for _, reg := range registrations {
		r.plugins = append(r.plugins, namedPlugin{name: reg.name, plugin: reg.make(d)})
	}
	return r
}

// lookup returns the one plugin that spec selects.
func (r *registry) lookup(spec *orcav1.ActionSpec) (string, Plugin, error) {
	var found []namedPlugin
	for _, p := range r.plugins {
		if p.plugin.Selected(spec) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0].name, found[0].plugin, nil
	case 0:
		return "", nil, Misconfigured(fmt.Errorf("no plugin set: want exactly one of %s", r.names()))
	default:
		var names []string
		for _, p := range found {
			names = append(names, p.name)
		}
		return "", nil, Misconfigured(fmt.Errorf("plugins %s set: want exactly one", strings.Join(names, ", ")))
	}
}

func (r *registry) names() string {
	var names []string
	for _, p := range r.plugins {
		names = append(names, p.name)
	}
	return strings.Join(names, ", ")
}

// misconfiguredError marks an Action that cannot run as it is written.
type misconfiguredError struct{ err error }

func (e misconfiguredError) Error() string { return e.err.Error() }
func (e misconfiguredError) Unwrap() error { return e.err }

// Misconfigured marks err as caused by the Action's settings (or what they
// refer to, such as a Secret): running again will not help until they change.
func Misconfigured(err error) error {
	if err == nil {
		return nil
	}
	return misconfiguredError{err}
}

// IsMisconfigured reports whether err was marked by Misconfigured.
func IsMisconfigured(err error) bool {
	var m misconfiguredError
	return errors.As(err, &m)
}
