package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/sandbox"
	"github.com/sirocco-cloud/orca/internal/scheme"
)

// startSandbox starts the local cluster of `orca run --sandbox` in
// StateDir/sandbox and points o at it: its kubeconfig, and a NATS store inside
// the sandbox folder, emptied with it.
func startSandbox(ctx context.Context, stderr io.Writer, log *slog.Logger, o *RunOptions) (*sandbox.Sandbox, error) {
	dir := filepath.Join(o.StateDir, "sandbox")
	log.Info("starting a sandbox cluster", "dir", dir)
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: dir, Output: stderr, Log: log})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	o.App.Kubeconfig = sb.KubeconfigPath
	o.StateDir = filepath.Join(dir, "nats")
	o.InstallCRDs = false // the sandbox installed them
	return sb, nil
}

// prepareCluster installs the CRDs and applies o.Apply, as asked.
func prepareCluster(ctx context.Context, stderr io.Writer, o RunOptions) error {
	if !o.InstallCRDs && len(o.Apply) == 0 {
		return nil
	}
	cfg, err := o.App.RESTConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("new client: %w", err)
	}
	if o.InstallCRDs {
		if err := installCRDs(ctx, c, stderr); err != nil {
			return err
		}
	}
	return applyPaths(ctx, c, o.namespace(), o.Apply, stderr)
}

// printTryThis tells where the sandbox's kubeconfig is and what to try.
func printTryThis(w io.Writer, sb *sandbox.Sandbox, o RunOptions, webView string) {
	orca := "orca"
	if exe, err := os.Executable(); err == nil {
		orca = shortPath(exe)
	}
	nats := ""
	if url := strings.Join(o.App.NATS.URLs, ","); url != bus.DefaultURL {
		nats = " --nats-url " + url
	}
	if webView != "" {
		webView = "\nWatch it in your browser: " + webView + "\n\n"
	}
	fmt.Fprintf(w, `
Orca runs in a sandbox cluster: its Pods run as processes on this host.
%sIn another terminal:

  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl get tasks,ignitors,pods
  kubectl logs -l orca.sirocco.cloud/task=task2
  %s events%s
  %s fire ignitor1 --data "hello again"%s
  %s graph

Logs of the control plane: %s. Ctrl-C stops everything.

`, webView, sb.KubeconfigPath, sb.Kubectl, orca, nats, orca, nats, orca, sb.LogDir)
}

// shortPath returns path relative to the working folder when it is below it.
func shortPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return "./" + rel
}
