// Command natsd is the chaos suite's NATS server: a nats-server with JetStream on
// file storage, in a process of its own so that the suite can SIGKILL it and start
// it again on the same store and port. With -cluster and -routes, several of them
// form a cluster (the suite's HA mode).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	var (
		addr    = flag.String("addr", "127.0.0.1:4222", "client listen address")
		store   = flag.String("store", "", "JetStream store folder (required)")
		name    = flag.String("name", "orca-chaos", "server name, unique in a cluster")
		cluster = flag.String("cluster", "", "cluster listen address; empty runs a single server")
		routes  = flag.String("routes", "", "comma-separated nats-route:// URLs of the other cluster nodes")
	)
	flag.Parse()
	if err := run(*addr, *store, *name, *cluster, *routes); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
}

func run(addr, store, name, cluster, routes string) error {
	if store == "" {
		return fmt.Errorf("-store is required")
	}
	opts := &server.Options{ServerName: name, JetStream: true, StoreDir: store}
	var err error
	if opts.Host, opts.Port, err = hostPort(addr); err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	if cluster != "" {
		opts.Cluster.Name = "orca-chaos"
		if opts.Cluster.Host, opts.Cluster.Port, err = hostPort(cluster); err != nil {
			return fmt.Errorf("-cluster: %w", err)
		}
		opts.Routes = server.RoutesFromStr(routes)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	srv.ConfigureLogger()
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		return fmt.Errorf("not ready for connections after 30s")
	}
	srv.WaitForShutdown()
	return nil
}

func hostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	return host, p, err
}
