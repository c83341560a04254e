// Command orca is Orca's command line: `orca run` runs the four services in one
// process (with an embedded NATS, and with --sandbox in a local cluster it
// starts), `orca fire` fires an ignition, `orca events`
// follows the events and `orca graph` prints a namespace's workflow graph; see
// internal/cli. Built as kubectl-orca it is the kubectl plugin `kubectl orca`:
//
//	go build -o kubectl-orca ./cmd/orca
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirocco-cloud/orca/internal/cli"
	"github.com/sirocco-cloud/orca/internal/nodeagent"
	"github.com/sirocco-cloud/orca/internal/sandbox"
)

func main() {
	// The sandbox's node agent starts each container through this binary.
	nodeagent.RunContainerIfChild()
	// It also starts the guard that stops a sandbox whose process was killed.
	sandbox.RunGuardIfChild()
	// SIGHUP too: a closed terminal stops the sandbox as Ctrl-C does.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := cli.Main(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
