package chaos

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// The suite's flags; `make chaos CHAOS_FLAGS="-n=200 -seed=7"` passes them.
var (
	flagN            = flag.Int("n", 1000, "ignitions to fire")
	flagSeed         = flag.Uint64("seed", 0, "seed of the data and the fault plan; 0 draws one (printed)")
	flagDuration     = flag.Duration("duration", 2*time.Minute, "how long the firing and the service kills last")
	flagKillEvery    = flag.Duration("kill-every", 4*time.Second, "mean time between two SIGKILLs of a service")
	flagNATSRestarts = flag.Int("nats-restarts", 2, "times the nats-server is killed and started again on its store")
	flagRefusal      = flag.Duration("refusal", 2*time.Minute, "how long Pod creates of two Tasks are refused (well past the old 81s retry budget, kills and restarts included)")
	flagGrace        = flag.Duration("consumer-grace", 20*time.Second, "how long a service whose consumer was deleted is spared from kills to make it again by itself (then the suite restarts it)")
	flagQuiet        = flag.Duration("quiet", 15*time.Second, "no Pod change for this long (and idle consumers) means quiet")
	flagQuietTimeout = flag.Duration("quiet-timeout", 3*time.Minute, "give up waiting for quiet after this long, then check anyway")
	flagReplicas     = flag.Int("replicas", 1, "processes of each service (HA mode: 2)")
	flagNATSNodes    = flag.Int("nats-nodes", 1, "nats-servers, clustered when more than one (HA mode: 3, the stream R3)")
	flagKeep         = flag.Bool("keep", false, "keep the work folder (logs, etcd, NATS store) even when the suite passes")
)

// flagLeaderKillEvery paces the HA mode's kills of the leaders.
var flagLeaderKillEvery = flag.Duration("leader-kill-every", 30*time.Second, "with several replicas, mean time between two SIGKILLs of the scheduler's leader, and of the watcher's")

// figures is the suite's last line, printed after the tests ran.
var figures string

func TestMain(m *testing.M) {
	flag.Parse()
	// envtest logs through controller-runtime; its messages are not the suite's.
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	if figures != "" {
		fmt.Println(figures)
	}
	os.Exit(code)
}

// enabled reports whether the suite should run: ORCA_CHAOS is set or one of its
// flags was given. `go test ./...` runs neither, and skips it.
func enabled() bool {
	on := os.Getenv("ORCA_CHAOS") != ""
	flag.Visit(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Name, "test.") && f.Name != "kubeconfig" {
			on = true
		}
	})
	return on
}

// logger prints the suite's progress with the time since it started, to stdout
// and to chaos.log in the work folder.
type logger struct {
	start time.Time
	mu    sync.Mutex
	file  *os.File
}

func (l *logger) say(format string, args ...any) {
	line := fmt.Sprintf("chaos %7.1fs: %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Print(line)
	if l.file != nil {
		_, _ = l.file.WriteString(line)
	}
}
