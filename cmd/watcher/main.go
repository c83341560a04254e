// Command watcher runs Orca's watcher; see internal/watcher.
package main

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/watcher"
)

func main() {
	app.Main("watcher", func(o app.Options) app.Setup {
		return func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return watcher.Setup(ctx, mgr, b, watcher.Options{StatusWritesPerSecond: o.TaskStatusQPS})
		}
	})
}
