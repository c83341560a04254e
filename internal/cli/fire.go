package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/telemetry"
)

// FireOptions configure Fire.
type FireOptions struct {
	// NATS says how to reach NATS.
	NATS bus.Options
	// Namespace and Ignition name the ignition; both required.
	Namespace, Ignition string
	// Data becomes ORCA_DATA of the started Tasks' Pods.
	Data []byte
	// ID is the event id; empty means a random UUID. An id that orca fire used
	// within the stream's duplicate window is refused; after it, a Task that the
	// first ignition of that id started (its Pod still exists) does not start again.
	ID string
	// Run is the run id of the chain; empty means the event id.
	Run string
	// Kube, when set, is used to warn when no Task in the namespace starts on the
	// ignition; a cluster that cannot be reached only skips the check.
	Kube *KubeOptions
	// Timeout bounds connecting to NATS and to the cluster; default 5s.
	Timeout time.Duration
}

// FireResult says what Fire published.
type FireResult struct {
	Subject, ID, Run string
}

// Fire publishes an ignition and prints what it did on stdout; warnings go to
// stderr.
func Fire(ctx context.Context, stdout, stderr io.Writer, o FireOptions) (*FireResult, error) {
	if err := validateName("namespace", o.Namespace, true); err != nil {
		return nil, err
	}
	if err := validateName("ignition", o.Ignition, false); err != nil {
		return nil, err
	}
	if len(o.Data) > bus.MaxIgnitionData {
		return nil, fmt.Errorf("ignition data is %d bytes, over the limit of %d bytes (64 KiB): it becomes the environment variable ORCA_DATA "+
			"of every container, where larger data would keep them from starting; pass a reference (a URL, an object name) instead", len(o.Data), bus.MaxIgnitionData)
	}
	if o.ID == "" {
		o.ID = newUUID()
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Kube != nil {
		warnIfNoTaskListens(ctx, stderr, *o.Kube, o.Namespace, o.Ignition, o.Timeout)
	}
	// No stream check first: the publish's answer says whether the stream is
	// there, and a namespace's own NATS user may not ask for the stream's info.
	b, err := connect(ctx, o.NATS, o.Timeout, false)
	if err != nil {
		return nil, fmt.Errorf("fire ignition %s/%s: %w", o.Namespace, o.Ignition, err)
	}
	defer func() { _ = b.Close() }()
	ig := bus.Ignition{
		ID: o.ID, Source: "orca/cli", Namespace: o.Namespace, Name: o.Ignition,
		Run: o.Run, Data: o.Data, Time: time.Now(),
	}
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := b.PublishNewIgnition(pctx, ig); errors.Is(err, bus.ErrDuplicate) {
		return nil, fmt.Errorf("ignition %s/%s not fired: orca fire published id %q within the stream's duplicate window (2 minutes by default), "+
			"so the stream dropped this one and no Task starts; pass another --id, or none for a random one", o.Namespace, o.Ignition, o.ID)
	} else if err != nil {
		if errors.Is(err, bus.ErrNoStream) {
			err = streamError(o.NATS, b.Stream(), err)
		}
		return nil, fmt.Errorf("fire ignition %s/%s on %s: %w", o.Namespace, o.Ignition, natsURL(o.NATS), err)
	}
	run := o.Run
	if run == "" {
		run = o.ID
	}
	res := &FireResult{Subject: bus.IgnitionSubject(o.Namespace, o.Ignition), ID: o.ID, Run: run}
	fmt.Fprintf(stdout, "fired ignition %s/%s: subject %s, id %s, run %s, %d bytes of data, on %s\n",
		o.Namespace, o.Ignition, res.Subject, res.ID, res.Run, len(o.Data), natsURL(o.NATS))
	return res, nil
}

// warnIfNoTaskListens warns on stderr when no Task of the namespace lists the
// ignition in startOnIgnition. It says nothing when no kubeconfig is found.
func warnIfNoTaskListens(ctx context.Context, stderr io.Writer, k KubeOptions, ns, ignition string, timeout time.Duration) {
	c, host, err := k.Client()
	if err != nil {
		if k.Kubeconfig != "" {
			fmt.Fprintf(stderr, "note: not checking which Tasks start on %s: %v\n", ignition, err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var tasks orcav1.TaskList
	if err := c.List(ctx, &tasks, client.InNamespace(ns)); err != nil {
		fmt.Fprintf(stderr, "note: not checking which Tasks start on %s: list Tasks in namespace %s on %s: %v\n", ignition, ns, host, explainKube(err))
		return
	}
	var listened []string
	for _, t := range tasks.Items {
		if slices.Contains(t.Spec.StartOnIgnition, orcav1.ObjectName(ignition)) {
			return
		}
		for _, n := range t.Spec.StartOnIgnition {
			listened = append(listened, string(n))
		}
	}
	slices.Sort(listened)
	listened = slices.Compact(listened)
	msg := fmt.Sprintf("warning: no Task in namespace %s lists %q in startOnIgnition: the ignition is stored but starts nothing", ns, ignition)
	if len(listened) > 0 {
		msg += fmt.Sprintf(" (Tasks there start on: %s)", strings.Join(listened, ", "))
	} else if len(tasks.Items) == 0 {
		msg += " (the namespace has no Tasks; pass -n to choose another)"
	}
	fmt.Fprintln(stderr, msg)
}

// explainKube adds what to do to a few common API errors.
func explainKube(err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("%w: the cluster has no Orca CRDs, install them with `kubectl apply -k deploy/kustomize/crd`", err)
	}
	return err
}

func validateName(what, name string, label bool) error {
	if name == "" {
		return usageErrorf("the %s is missing", what)
	}
	var errs []string
	if label {
		errs = validation.IsDNS1123Label(name)
	} else {
		errs = validation.IsDNS1123Subdomain(name)
	}
	if len(errs) > 0 {
		hint := ""
		if what == "ignition" {
			hint = " (Tasks list only such names in startOnIgnition)"
		}
		return usageErrorf("%s %q is not a valid name%s: %s", what, name, hint, strings.Join(errs, "; "))
	}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func fireCmd(ctx context.Context, c *cmdEnv, args []string) error {
	fs := newFlagSet("fire")
	var kube KubeOptions
	kube.bindFlags(fs)
	complete := bindNATSFlags(fs)
	var ns, data, dataFile, id, run string
	var timeout time.Duration
	var noCheck bool
	fs.StringVar(&ns, "n", "", "namespace of the ignition (default: the kubeconfig context's, else default)")
	fs.StringVar(&ns, "namespace", "", "same as -n")
	fs.StringVar(&data, "data", "", "the ignition's data: ORCA_DATA of the started Pods")
	fs.StringVar(&dataFile, "data-file", "", "read the data from this file (- for stdin)")
	fs.StringVar(&id, "id", "", "event id (default: a random UUID); one id starts each Task once: a reused id is refused within the stream's duplicate window, and dropped by the dispatcher while the first Pod exists")
	fs.StringVar(&run, "run", "", "run id of the chain (default: the event id)")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long to try to reach NATS and the cluster")
	fs.BoolVar(&noCheck, "no-check", false, "do not read the cluster's Tasks to warn when none starts on the ignition")
	pos, err := parse(c, fs, "fire <ignition> [--data TEXT | --data-file FILE] [-n NAMESPACE] [--run ID] [--id ID]",
		`Fires an ignition: publishes the CloudEvent cloud.sirocco.orca.ignited on
orca.ignited.<namespace>.<ignition>, as an Ignitor does. Every Task of the
namespace that lists the ignition in startOnIgnition starts, with the data as
ORCA_DATA. The ignition need not be an Ignitor. It warns (and still fires) when
the cluster has no Task that starts on it.

Example:
  orca fire ignitor1 --data "hello" -n default
`, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want one ignition name, got %d arguments", len(pos))
	}
	o := FireOptions{NATS: complete(), Ignition: pos[0], ID: id, Run: run, Timeout: timeout}
	o.Namespace = kube.resolveNamespace(ns)
	if !noCheck {
		o.Kube = &kube
	}
	switch {
	case data != "" && dataFile != "":
		return usageErrorf("pass --data or --data-file, not both")
	case dataFile == "-":
		if o.Data, err = io.ReadAll(io.LimitReader(c.stdin, bus.MaxIgnitionData+1)); err != nil {
			return fmt.Errorf("read data from stdin: %w", err)
		}
	case dataFile != "":
		if o.Data, err = os.ReadFile(dataFile); err != nil {
			return fmt.Errorf("read --data-file: %w", err)
		}
	default:
		o.Data = []byte(data)
	}
	stop, err := telemetry.Setup(ctx, telemetry.Options{Service: "orca-cli"})
	if err != nil {
		return err
	}
	defer stop()
	// A process that continues a trace (an Orca Pod, a CI job) starts a run
	// that joins it.
	ctx = telemetry.WithRemoteParent(ctx, os.Getenv(orcav1.EnvTraceParent), os.Getenv(orcav1.EnvTraceState))
	_, err = Fire(ctx, c.stdout, c.stderr, o)
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	return err
}
