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
	var ao actions.Options
	app.Main("actions", func(o app.Options) app.Setup {
		return func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			ao.Namespaces = o.Namespaces
			ao.Consumer.RetryFor = o.RetryFor
			return actions.Setup(ctx, mgr, b, ao)
		}
	}, ao.BindFlags)
}
