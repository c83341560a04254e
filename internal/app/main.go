package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main is a service's whole main function: it parses the flags, runs the service
// until SIGINT or SIGTERM and exits non-zero with the error when it fails. setup
// receives the parsed options and returns the service's Setup; flags register
// the service's own flags, next to those every service takes.
func Main(name string, setup func(Options) Setup, flags ...func(*flag.FlagSet)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, name, os.Args[1:], setup, flags...)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name string, args []string, setup func(Options) Setup, flags ...func(*flag.FlagSet)) error {
	var opts Options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	opts.BindFlags(fs)
	for _, bind := range flags {
		bind(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := opts.Complete(); err != nil {
		return err
	}
	return Run(ctx, name, opts, setup(opts))
}
