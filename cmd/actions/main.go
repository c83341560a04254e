// Command actions runs Orca's actions service; see internal/actions.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/actions"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "actions:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var opts app.Options
	fs := flag.NewFlagSet("actions", flag.ContinueOnError)
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := opts.Complete(); err != nil {
		return err
	}
	return app.Run(ctx, "actions", opts, func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
		return actions.Setup(ctx, mgr, b, actions.Options{Namespaces: opts.Namespaces})
	})
}
