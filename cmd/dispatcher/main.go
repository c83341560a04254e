// Command dispatcher runs Orca's dispatcher; see internal/dispatcher.
package main

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
)

func main() {
	var do dispatcher.Options
	app.Main("dispatcher", func(o app.Options) app.Setup {
		return func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			do.Namespaces, do.Consumer.RetryFor = o.Namespaces, o.RetryFor
			return dispatcher.Setup(ctx, mgr, b, do)
		}
	}, do.BindFlags)
}
