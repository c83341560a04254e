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

// orca is Orca's services: an embedded nats-server, the watcher and the scheduler
// in this process, and the dispatcher in this process or as its own process.
type orca struct {
	nats        *bus.Embedded
	bus         *bus.Bus // the bench's own connection, to fire ignitions
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	dispProc    *exec.Cmd
	dispDone    chan error
	dispMetrics string // the dispatcher process's metrics address
	wrap        map[string]func(http.RoundTripper) http.RoundTripper
}

// startOrca starts the services; dispProcess runs the dispatcher as the binary
// built from ./cmd/dispatcher, so that its memory is its own.
func startOrca(ctx context.Context, c *cluster, dispProcess bool) (*orca, error) {
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: filepath.Join(c.tmp, "nats")})
	if err != nil {
		return nil, err
	}
	o := &orca{nats: srv}
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
		"watcher": func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return watcher.Setup(ctx, mgr, b, watcher.Options{})
		},
		"scheduler": func(ctx context.Context, mgr manager.Manager, b *bus.Bus) error {
			return scheduler.Setup(ctx, mgr, b, scheduler.Options{})
		},
	}
	if dispProcess {
		if err := o.startDispatcherProcess(c, srv.URL()); err != nil {
			o.stop()
			return nil, err
		}
	} else {
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

func (o *orca) startDispatcherProcess(c *cluster, natsURL string) error {
	bin := filepath.Join(c.tmp, "dispatcher")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dispatcher")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/dispatcher: %w: %s", err, out)
	}
	logf, err := os.Create(filepath.Join(c.tmp, "dispatcher.log"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	o.dispMetrics = l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "--kubeconfig="+c.env.KubeconfigPath, "--nats-url="+natsURL,
		"--metrics-bind-address="+o.dispMetrics, "--health-probe-bind-address=0")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	o.dispProc, o.dispDone = cmd, make(chan error, 1)
	go func() { o.dispDone <- cmd.Wait(); _ = logf.Close() }()
	return nil
}

// dispatcherMemory returns the dispatcher process's resident memory and its peak
// in MiB (VmRSS, VmHWM); ok is false when the dispatcher runs in this process.
func (o *orca) dispatcherMemory() (rss, hwm float64, ok bool) {
	if o.dispProc == nil {
		return 0, 0, false
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", o.dispProc.Process.Pid))
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

// dispatcherHeap returns the dispatcher process's Go heap in use in MiB, from its
// metrics endpoint (0 when unknown).
func (o *orca) dispatcherHeap() float64 {
	if o.dispMetrics == "" {
		return 0
	}
	resp, err := http.Get("http://" + o.dispMetrics + "/metrics")
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f / (1 << 20)
		}
	}
	return 0
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
	if o.dispProc != nil {
		_ = o.dispProc.Process.Signal(syscall.SIGTERM)
		select {
		case <-o.dispDone:
		case <-time.After(15 * time.Second):
			_ = o.dispProc.Process.Kill()
			<-o.dispDone
		}
	}
	if o.bus != nil {
		_ = o.bus.Close()
	}
	o.nats.Shutdown()
}
