package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/sirocco-cloud/orca/internal/app"
	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/scheduler"
	"github.com/sirocco-cloud/orca/internal/testenv"
	"github.com/sirocco-cloud/orca/internal/watcher"
)

// orca is Orca's services: an embedded nats-server, the scheduler in this
// process, and the dispatcher and the watcher each in this process or as a
// process of its own (the default: then each one's memory and CPU are its own).
type orca struct {
	c           *cluster
	nats        *bus.Embedded
	bus         *bus.Bus // the bench's own connection, to fire ignitions
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	bin         string // the folder of the services' binaries
	dispatchers []*proc
	watcher     *proc
	wrap        map[string]func(http.RoundTripper) http.RoundTripper
	// flags are extra flags of the service processes, by name.
	flags map[string][]string
}

// proc is a service running as its own process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan error
	metrics string // its metrics address
}

// startOrca starts the services; with processes, the dispatcher and the watcher
// run as the binaries built from ./cmd.
func startOrca(ctx context.Context, c *cluster, processes bool, flags map[string][]string) (*orca, error) {
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: filepath.Join(c.tmp, "nats")})
	if err != nil {
		return nil, err
	}
	o := &orca{c: c, nats: srv, bin: filepath.Join(c.tmp, "bin"), flags: flags}
	if o.bus, err = bus.Connect(ctx, bus.Options{URLs: []string{srv.URL()}, Name: "bench"}); err != nil {
		o.stop()
		return nil, err
	}
	if err := o.bus.EnsureStream(ctx, bus.StreamOptions{}); err != nil {
		o.stop()
		return nil, err
	}
	svcCtx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	services := map[string]app.Setup{
		"scheduler": func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return scheduler.Setup(ctx, mgr, b, scheduler.Options{})
		},
	}
	if processes {
		build := exec.Command("go", "build", "-o", o.bin+"/", "./cmd/dispatcher", "./cmd/watcher")
		build.Dir = testenv.RepoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			o.stop()
			return nil, fmt.Errorf("go build ./cmd/dispatcher ./cmd/watcher: %w: %s", err, out)
		}
		if o.watcher, err = o.startProcess("watcher"); err != nil {
			o.stop()
			return nil, err
		}
		if err := o.addDispatcher(); err != nil {
			o.stop()
			return nil, err
		}
	} else {
		services["watcher"] = func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return watcher.Setup(ctx, mgr, b, watcher.Options{})
		}
		services["dispatcher"] = func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return dispatcher.Setup(ctx, mgr, b, dispatcher.Options{})
		}
		// Time the in-process dispatcher's Pod creates, for the hop's breakdown.
		o.wrap = map[string]func(http.RoundTripper) http.RoundTripper{"dispatcher": func(rt http.RoundTripper) http.RoundTripper {
			return timedCreates{rt: rt, marks: c.marks}
		}}
	}
	for name, setup := range services {
		if err := o.startService(svcCtx, c, name, setup); err != nil {
			o.stop()
			return nil, err
		}
	}
	return o, nil
}

// startService runs one service as app.Run does: its own manager (QPS -1, the
// Pod cache limited to Orca's Pods) and its own bus connection.
func (o *orca) startService(ctx context.Context, c *cluster, name string, setup app.Setup) error {
	opts := app.Options{MetricsAddr: "0", ProbeAddr: "0"}
	mo := opts.ManagerOptions(name)
	mo.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	cfg := unthrottled(c.env.Config)
	if w := o.wrap[name]; w != nil {
		cfg.Wrap(w)
	}
	mgr, err := manager.New(cfg, mo)
	if err != nil {
		return err
	}
	b, err := bus.Connect(ctx, bus.Options{URLs: []string{o.nats.URL()}, Name: "orca-" + name})
	if err != nil {
		return err
	}
	if err := setup(ctx, mgr, b); err != nil {
		_ = b.Close()
		return fmt.Errorf("set up %s: %w", name, err)
	}
	o.wg.Go(func() {
		if err := mgr.Start(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "%s stopped: %v\n", name, err)
		}
		_ = b.Close()
	})
	return nil
}

// startProcess starts the binary of the named service, logging to its own file,
// with the extra flags of serviceFlags.
func (o *orca) startProcess(name string) (*proc, error) {
	logf, err := os.Create(filepath.Join(o.c.tmp, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano())))
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, metrics: l.Addr().String(), done: make(chan error, 1)}
	_ = l.Close()
	args := []string{"--kubeconfig=" + o.c.env.KubeconfigPath, "--nats-url=" + o.nats.URL(),
		"--metrics-bind-address=" + p.metrics, "--health-probe-bind-address=0"}
	p.cmd = exec.Command(filepath.Join(o.bin, name), append(args, o.flags[name]...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait(); _ = logf.Close() }()
	return p, nil
}

// stop stops the process: SIGTERM, then SIGKILL after 15 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// addDispatcher starts one more dispatcher process: the dispatchers share the
// durable consumer. It may take a few seconds to consume (see handled).
func (o *orca) addDispatcher() error {
	p, err := o.startProcess("dispatcher")
	if err != nil {
		return err
	}
	o.dispatchers = append(o.dispatchers, p)
	return nil
}

// handled returns the number of messages each dispatcher process handled.
func (o *orca) handled() []float64 {
	var out []float64
	for _, p := range o.dispatchers {
		out = append(out, o.metric(p, "orca_bus_messages_total"))
	}
	return out
}

// removeDispatcher stops the last dispatcher process started.
func (o *orca) removeDispatcher() {
	p := o.dispatchers[len(o.dispatchers)-1]
	o.dispatchers = o.dispatchers[:len(o.dispatchers)-1]
	p.stop()
}

// dispatcherMemory returns the first dispatcher process's resident memory and
// its peak in MiB (VmRSS, VmHWM); ok is false when the dispatcher runs in this
// process.
func (o *orca) dispatcherMemory() (rss, hwm float64, ok bool) {
	if len(o.dispatchers) == 0 {
		return 0, 0, false
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", o.dispatchers[0].cmd.Process.Pid))
	if err != nil {
		return 0, 0, false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[0], 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			hwm = kb / 1024
		}
	}
	return rss, hwm, true
}

// dispatcherHeap returns the first dispatcher process's Go heap in use in MiB
// (0 when unknown).
func (o *orca) dispatcherHeap() float64 {
	if len(o.dispatchers) == 0 {
		return 0
	}
	return o.metric(o.dispatchers[0], "go_memstats_heap_inuse_bytes") / (1 << 20)
}

// metric returns the sum of the samples of a metric of the process p (0 when
// it has none, or its endpoint does not answer yet). name may end within the
// labels (`name{label="value"`) to select samples.
func (o *orca) metric(p *proc, name string) float64 {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (!strings.HasSuffix(name, `"`) && rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(line)
		f, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
		sum += f
	}
	return sum
}

// ignite publishes an ignition as an external system would.
func (o *orca) ignite(ctx context.Context, ns, name, id string) error {
	return o.bus.PublishIgnition(ctx, bus.Ignition{ID: id, Source: "bench", Namespace: ns, Name: name, Data: []byte("go")})
}

func (o *orca) stop() {
	if o.cancel != nil {
		o.cancel()
		o.wg.Wait()
	}
	for _, p := range append(o.dispatchers, o.watcher) {
		if p != nil {
			p.stop()
		}
	}
	if o.bus != nil {
		_ = o.bus.Close()
	}
	o.nats.Shutdown()
}

// statusIdle waits until the watcher's task status controller has had nothing
// to do three times in a row, 200 ms apart (a Task waiting for its status
// interval is in no queue metric), or until timeout. It reads the watcher
// process's metrics, which costs the API server nothing; with the watcher in
// this process it returns at once.
func (o *orca) statusIdle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for idle := 0; o.watcher != nil && idle < 3; {
		idle++
		if o.metric(o.watcher, `workqueue_depth{controller="orca-task-status"`) > 0 ||
			o.metric(o.watcher, `controller_runtime_active_workers{controller="orca-task-status"`) > 0 {
			idle = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the watcher's task status controller is busy after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
