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
	app.Main("dispatcher", func(o app.Options) app.Setup {
		return func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return dispatcher.Setup(ctx, mgr, b, dispatcher.Options{Namespaces: o.Namespaces, Consumer: bus.ConsumerOptions{RetryFor: o.RetryFor}})
		}
	})
}
