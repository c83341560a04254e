// Command scheduler runs Orca's scheduler: it fires Ignitors on time, publishing
// orca.ignited.<namespace>.<name> on NATS JetStream and recording each firing in
// the Ignitor's status. Run it with --leader-elect when there is more than one
// replica.
package main

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/scheduler"
)

func main() {
	app.Main("scheduler", func(o app.Options) app.Setup {
		return func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return scheduler.Setup(ctx, mgr, b, scheduler.Options{})
		}
	})
}
