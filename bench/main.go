// Command bench measures Orca against the baselines of a real local control plane
// (etcd, kube-apiserver and kube-controller-manager from hack/control-plane.sh),
// with an embedded nats-server and Orca's services; the bench plays the kubelet.
// It prints one table, ratios first, and writes the same rows to bench/results.json.
//
//	go run ./bench            # about 7 minutes
//	go run ./bench -quick     # about 3 minutes, fewer samples
//
// Every ratio compares two things measured in the same run, interleaved where the
// case allows: absolute times on a shared 2-core machine move from run to run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sirocco-cloud/orca/internal/controlplane"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

var stderr = os.Stderr

type settings struct {
	samples, ignSamples, warm   int
	chainRuns, chainLen, fanout int
	cronSamples, costs          int
	scaleTasks, scaleIgnitors   int
	services                    string
	watcherFlags                string
	dispatcherFlags             string
	susFrom                     float64
	susSeconds                  time.Duration
	skip                        []string
	out, markdown, cpuprofile   string
	profileDir                  string
	keep, trace, floorShape     bool
}

func (c settings) runs(name string) bool { return !slices.Contains(c.skip, name) }

func main() {
	var cfg settings
	quick := false
	flag.IntVar(&cfg.samples, "samples", 100, "hops measured in cases 1 and 6 (each side)")
	flag.IntVar(&cfg.ignSamples, "ignition-samples", 30, "samples of case 2 per kube-controller-manager configuration (each side)")
	flag.IntVar(&cfg.warm, "warm", 5, "uncounted warm-up samples before each latency case")
	flag.IntVar(&cfg.chainRuns, "chain-runs", 3, "runs of case 5 (each side)")
	flag.IntVar(&cfg.chainLen, "chain-length", 100, "Tasks in the chain of case 5")
	flag.IntVar(&cfg.fanout, "fanout", 500, "Tasks (and Jobs) of case 4")
	flag.IntVar(&cfg.cronSamples, "cron-samples", 3, "CronJob samples of case 3: one a minute")
	flag.IntVar(&cfg.costs, "costs", 200, "requests of each kind measured for the control plane's cost of one")
	flag.IntVar(&cfg.scaleTasks, "scale-tasks", 10000, "Tasks in the cluster in case 6")
	flag.IntVar(&cfg.scaleIgnitors, "scale-ignitors", 1000, "Ignitors added in case 6")
	flag.StringVar(&cfg.services, "services", "process", "run the dispatcher and the watcher as processes of their own (process) or in the bench (inproc)")
	flag.StringVar(&cfg.watcherFlags, "watcher-flags", "", "extra flags of the watcher process, space-separated (e.g. --task-status-qps=100)")
	flag.StringVar(&cfg.dispatcherFlags, "dispatcher-flags", "", "extra flags of the dispatcher processes, space-separated")
	flag.Float64Var(&cfg.susFrom, "sustained-from", 10, "lowest rate of case 7, in runs a second")
	flag.DurationVar(&cfg.susSeconds, "sustained-step", 3*time.Second, "how long case 7 starts runs at each rate")
	skip := flag.String("skip", "", "cases to skip, comma-separated: costs,retry,chain,join,ignition,fanout,schedule,scale,sustained (the hop always runs)")
	flag.BoolVar(&quick, "quick", false, "fewer samples: 30 hops, 15 ignitions, 2 chain runs, 1 cron minute, 3000 Tasks")
	flag.StringVar(&cfg.out, "out", filepath.Join(testenv.RepoRoot(), "bench", "results.json"), "JSON results file")
	flag.StringVar(&cfg.markdown, "markdown", "", "also write the table as Markdown to this file")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the bench process (with the in-process services) here")
	flag.StringVar(&cfg.profileDir, "profile-dir", "", "write CPU profiles of kube-apiserver during the costs, case 5 and Orca's fan-out here")
	flag.BoolVar(&cfg.floorShape, "floor-orca-pod", false, "the floor creates Pods shaped like Orca's (labels, annotations, env, owner, finalizer) instead of the bare template")
	flag.BoolVar(&cfg.trace, "trace", false, "consume Orca's task events too, to time that step of the hop (adds a consumer)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the folder of logs (services, kube-controller-manager)")
	flag.Parse()
	if quick { // flags given explicitly win
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"samples": "30", "ignition-samples": "15", "chain-runs": "2",
			"cron-samples": "1", "scale-tasks": "3000", "scale-ignitors": "300"} {
			if !set[name] {
				_ = flag.Set(name, v)
			}
		}
	}
	if *skip != "" {
		cfg.skip = strings.Split(*skip, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg settings) (err error) {
	tmp, err := os.MkdirTemp("", "orca-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.keep || err != nil {
			fmt.Fprintln(stderr, "logs kept in", tmp)
			return
		}
		_ = os.RemoveAll(tmp)
	}()
	logf, err := os.Create(filepath.Join(tmp, "orca.log"))
	if err != nil {
		return err
	}
	defer func() { _ = logf.Close() }()
	log := slog.New(slog.NewTextHandler(logf, nil))
	slog.SetDefault(log)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}

	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
	}
	rep := &report{Started: time.Now(), Machine: machine(), Flags: map[string]string{}}
	flag.VisitAll(func(f *flag.Flag) {
		if f.Name != "kubeconfig" { // controller-runtime's, unused here
			rep.Flags[f.Name] = f.Value.String()
		}
	})
	step := func(format string, args ...any) {
		fmt.Fprintf(stderr, "[%s] %s\n", time.Since(rep.Started).Round(time.Second), fmt.Sprintf(format, args...))
	}
	step("starting etcd and kube-apiserver (envtest)")
	c, err := startCluster(tmp)
	if err != nil {
		return err
	}
	defer func() { _ = c.stop() }()
	obsCtx, cancelObs := context.WithCancel(ctx)
	defer cancelObs()
	obs, err := startObserver(obsCtx, c.cfg, c.marks)
	if err != nil {
		return err
	}
	step("starting nats-server and Orca (dispatcher and watcher: %s)", cfg.services)
	o, err := startOrca(ctx, c, cfg.services == "process", map[string][]string{
		"watcher": strings.Fields(cfg.watcherFlags), "dispatcher": strings.Fields(cfg.dispatcherFlags)})
	if err != nil {
		return err
	}
	defer o.stop()
	step("starting kube-controller-manager (defaults)")
	k, err := c.startKCM(ctx, obs, "default")
	if err != nil {
		return err
	}
	defer func() { _ = k.Stop(kcmGrace) }()
	if err := setupIgnition(ctx, c); err != nil {
		return err
	}
	if cfg.runs("fanout") {
		if err := setupFanout(ctx, c, cfg.fanout); err != nil {
			return err
		}
	}

	if cfg.runs("costs") {
		step("costs: %d requests of each kind a run makes", cfg.costs)
		if err := costCase(ctx, c, cfg.costs, cfg.profileDir, rep); err != nil {
			return err
		}
	}
	step("case 1, hop: floor and Orca, %d hops each", cfg.samples)
	l, err := setupLoops(ctx, c, obs, o, cfg.floorShape)
	if err != nil {
		return err
	}
	if cfg.trace {
		if err := traceEvents(ctx, o.bus, c.marks); err != nil {
			return err
		}
	}
	l.floor.trace, l.orca.trace = &breakdown{}, &breakdown{}
	floor, orcaHop, err := l.hops(ctx, cfg.samples, cfg.warm, hopGap)
	if err != nil {
		return err
	}
	rep.note("case 1, where the floor's hop goes: %v", l.floor.trace)
	rep.note("case 1, where Orca's hop goes: %v", l.orca.trace)
	fs, hop10 := summarize(floor), summarize(orcaHop)
	rep.add("1 hop", "Orca: Pod Succeeded -> next Task's Pod seen (10 Tasks)", "ms", hop10,
		"floor: informer reacts with one Pod create", &fs, "<= 1.2x", func(x float64) bool { return x <= 1.2 })

	if cfg.runs("retry") {
		step("case 8, retry: %d retries and as many plain hops", cfg.samples)
		if err := retryCase(ctx, c, obs, o, l, cfg.samples, cfg.warm, rep); err != nil {
			return err
		}
	}
	if cfg.runs("chain") {
		step("case 5, chain: %d Tasks, %d runs each side", cfg.chainLen, cfg.chainRuns)
		if err := chainCase(ctx, c, obs, o, l, cfg.chainRuns, cfg.chainLen, cfg.profileDir, rep); err != nil {
			return err
		}
	}
	if cfg.runs("join") {
		step("case 9, join: %d diamonds", cfg.samples)
		if err := joinCase(ctx, c, obs, o, cfg.samples, cfg.warm, rep); err != nil {
			return err
		}
	}
	phase := func(name string) error {
		if cfg.runs("ignition") {
			step("case 2, ignition vs Job (%s): %d samples each", phaseDesc[name], cfg.ignSamples)
			if err := ignitionCase(ctx, c, obs, o, name, cfg.ignSamples, cfg.warm, rep, "faster than Job"); err != nil {
				return err
			}
		}
		if cfg.runs("fanout") {
			step("case 4, fan-out vs Jobs (%s): %d each", phaseDesc[name], cfg.fanout)
			if err := fanoutCase(ctx, c, obs, o, cfg.fanout, name, name == "default", cfg.profileDir, rep); err != nil {
				return err
			}
		}
		return nil
	}
	if err := phase("default"); err != nil {
		return err
	}
	if cfg.runs("schedule") {
		step("case 3, schedule vs CronJob (%s): %d minutes", phaseDesc["default"], cfg.cronSamples)
		if err := scheduleCase(ctx, c, obs, cfg.cronSamples, rep); err != nil {
			return err
		}
	}
	if cfg.runs("ignition") || cfg.runs("fanout") {
		step("restarting kube-controller-manager with --kube-api-qps=1000 --kube-api-burst=2000")
		if err := k.Stop(kcmGrace); err != nil {
			return err
		}
		if k, err = c.startKCM(ctx, obs, "tuned", "--kube-api-qps=1000", "--kube-api-burst=2000"); err != nil {
			return err
		}
		if err := phase("tuned"); err != nil {
			return err
		}
	}
	if cfg.runs("sustained") {
		step("case 7, sustained runs of one 3-Task chain: rates from %.0f/s, %v each", cfg.susFrom, cfg.susSeconds)
		if err := sustainedCase(ctx, c, obs, o, cfg.susFrom, cfg.susSeconds, rep); err != nil {
			return err
		}
	}
	if cfg.runs("scale") {
		step("case 6, scale: %d Tasks, %d Ignitors", cfg.scaleTasks, cfg.scaleIgnitors)
		if err := scaleCase(ctx, c, o, l, cfg.scaleTasks, cfg.scaleIgnitors, cfg.samples, cfg.warm, hop10, rep); err != nil {
			return err
		}
	}
	rep.Duration = time.Since(rep.Started).Round(time.Second).String()
	step("done")
	fmt.Println()
	rep.print(os.Stdout)
	var errs []error
	errs = append(errs, rep.writeJSON(cfg.out))
	if cfg.markdown != "" {
		f, err := os.Create(cfg.markdown)
		if err == nil {
			rep.markdown(f)
			err = f.Close()
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// machine describes where the bench ran.
func machine() map[string]string {
	m := map[string]string{
		"cpus":       fmt.Sprint(runtime.NumCPU()),
		"go":         runtime.Version(),
		"kubernetes": controlplane.KubernetesVersion,
		"etcd":       controlplane.EtcdVersion,
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m["memory"] = strings.TrimSpace(v)
			}
		}
	}
	return m
}
