package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/graph"
)

// GraphOptions configure Graph.
type GraphOptions struct {
	Kube      KubeOptions
	Namespace string
	// Format is graph.FormatMermaid (default) or graph.FormatDOT.
	Format string
	// Timeout bounds reading from the cluster; default 10s.
	Timeout time.Duration
}

// Graph reads the Tasks and Ignitors of a namespace and prints their workflow
// graph to stdout; a note goes to stderr when the namespace has neither.
func Graph(ctx context.Context, stdout, stderr io.Writer, o GraphOptions) error {
	if o.Format == "" {
		o.Format = graph.FormatMermaid
	}
	if o.Format != graph.FormatMermaid && o.Format != graph.FormatDOT {
		return usageErrorf("unknown --format %q: want %s or %s", o.Format, graph.FormatMermaid, graph.FormatDOT)
	}
	if err := validateName("namespace", o.Namespace, true); err != nil {
		return err
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	c, host, err := o.Kube.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var tasks orcav1.TaskList
	if err := c.List(ctx, &tasks, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("list Tasks in namespace %s on %s: %w", o.Namespace, host, explainKube(err))
	}
	var ignitors orcav1.IgnitorList
	if err := c.List(ctx, &ignitors, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("list Ignitors in namespace %s on %s: %w", o.Namespace, host, explainKube(err))
	}
	if len(tasks.Items) == 0 && len(ignitors.Items) == 0 {
		fmt.Fprintf(stderr, "note: namespace %s has no Tasks and no Ignitors (pass -n to choose another)\n", o.Namespace)
	}
	return graph.Build(tasks.Items, ignitors.Items).Write(stdout, o.Format)
}

func graphCmd(ctx context.Context, c *cmdEnv, args []string) error {
	fs := newFlagSet("graph")
	var o GraphOptions
	o.Kube.bindFlags(fs)
	var ns string
	fs.StringVar(&ns, "n", "", "namespace (default: the kubeconfig context's, else default)")
	fs.StringVar(&ns, "namespace", "", "same as -n")
	fs.StringVar(&o.Format, "format", graph.FormatMermaid, "output format: mermaid or dot")
	fs.StringVar(&o.Format, "o", graph.FormatMermaid, "same as --format")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "how long to wait for the cluster")
	pos, err := parse(c, fs, "graph [-n NAMESPACE] [--format mermaid|dot]",
		`Reads the Tasks and Ignitors of a namespace and prints the workflow graph:
ignitions (Ignitors with their schedule, and dashed: names that Tasks start on
but no Ignitor has) and Tasks, with an edge from an ignition to each Task that
starts on it and from a Task to each Task that starts on its success or (dashed,
red) its failure. A Task with a startWhen condition is drawn behind a join (a
diamond: AND, OR, NOT, ALL DONE, or the expression) with an edge from each Task
the condition names, labelled with what it reads (succeeded, failed, skipped,
done, result). The output is sorted: the same objects print the same graph.

Examples:
  orca graph -n default > workflow.mmd
  orca graph --format dot | dot -Tsvg > workflow.svg
`, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("graph takes no arguments, got %q", pos)
	}
	o.Namespace = o.Kube.resolveNamespace(ns)
	return Graph(ctx, c.stdout, c.stderr, o)
}
