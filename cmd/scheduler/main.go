// Command scheduler runs Orca's scheduler: it fires Ignitors on time, publishing
// orca.ignited.<namespace>.<name> on NATS JetStream and recording each firing in
// the Ignitor's status. Run it with --leader-elect when there is more than one
// replica.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheduler"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("scheduler", flag.ContinueOnError)
	var opts app.Options
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := opts.Complete(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, "scheduler", opts, func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return scheduler.Setup(ctx, mgr, b, scheduler.Options{})
	})
}
