package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure an in-process nats-server with JetStream.
type EmbeddedOptions struct {
	// StoreDir holds JetStream's files; required.
	StoreDir string
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port to listen on; 0 picks a free port.
	Port int
	// ConfigFile, when set, is loaded first (accounts, users, permissions, TLS);
	// the fields above override it.
	ConfigFile string
}

// Embedded is a nats-server running in this process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a nats-server with JetStream on file storage and waits
// until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded nats needs a store folder")
	}
	opts := &server.Options{}
	if o.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("nats config %s: %w", o.ConfigFile, err)
		}
	}
	opts.ServerName = "orca-embedded"
	opts.JetStream = true
	opts.StoreDir = o.StoreDir
	opts.Host = o.Host
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	opts.Port = o.Port
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("new nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats server not ready after 10s")
	}
	return &Embedded{srv: srv}, nil
}

// URL returns the URL clients connect to.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
