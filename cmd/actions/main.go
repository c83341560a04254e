// Command actions runs Orca's actions service; see internal/actions.
package main

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/actions"
	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
)

func main() {
	app.Main("actions", func(o app.Options) app.Setup {
		return func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return actions.Setup(ctx, mgr, b, actions.Options{Namespaces: o.Namespaces, Consumer: bus.ConsumerOptions{RetryFor: o.RetryFor}})
		}
	})
}
