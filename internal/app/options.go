package app

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sirocco-cloud/orca/internal/bus"
)

// Options are the settings every service takes.
type Options struct {
	// Kubeconfig is a kubeconfig file; empty means KUBECONFIG, then in-cluster.
	Kubeconfig string
	// Namespaces limits the service to these namespaces; empty means all.
	Namespaces []string
	// NATS says how to reach NATS.
	NATS bus.Options
	// Stream configures the stream when this service is the one to create it.
	Stream bus.StreamOptions
	// RetryFor is how long the dispatcher and the actions service retry an event
	// whose handling fails for a reason a retry may fix, before dead-lettering it.
	RetryFor time.Duration
	// MetricsAddr and ProbeAddr are listen addresses; "0" disables either.
	MetricsAddr, ProbeAddr string
	// LeaderElect runs the service's controllers only in the elected replica.
	LeaderElect bool
	// LeaderElectionNamespace holds the Lease; default POD_NAMESPACE.
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod time the election; zero
	// means DefaultLeaseDuration, DefaultRenewDeadline and DefaultRetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// LogFormat is text or json.
	LogFormat string
	// LogLevel is the least level logged; default info.
	LogLevel slog.Level

	// KubeAPIQPS and KubeAPIBurst limit the requests the service sends to the
	// API server, on the client's side; a QPS of zero or less means no limit.
	KubeAPIQPS   float64
	KubeAPIBurst int
	// TaskStatusQPS is the watcher's budget of Task status writes a second (see
	// watcher.Options.StatusWritesPerSecond); negative means no limit.
	TaskStatusQPS float64
	// ReuseControllerNames lets one process build the same controllers more than
	// once (tests that run `orca run` in-process twice): controller-runtime
	// otherwise refuses a controller name that the process used before.
	ReuseControllerNames bool
}

// BindFlags registers the options on fs. Values not given as flags come from the
// environment where the contract names a variable (ORCA_NATS_URL, KUBECONFIG).
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster config)")
	fs.Func("namespaces", "comma-separated namespaces to serve (default: all)", func(s string) error {
		o.Namespaces = splitList(s)
		return nil
	})
	fs.Func("nats-url", "NATS server URLs, comma-separated (default: $ORCA_NATS_URL, then "+bus.DefaultURL+")", func(s string) error {
		o.NATS.URLs = splitList(s)
		return nil
	})
	fs.StringVar(&o.NATS.User, "nats-user", os.Getenv("ORCA_NATS_USER"), "NATS user (env ORCA_NATS_USER)")
	fs.StringVar(&o.NATS.Password, "nats-password", os.Getenv("ORCA_NATS_PASSWORD"), "NATS password (env ORCA_NATS_PASSWORD)")
	fs.StringVar(&o.NATS.Token, "nats-token", os.Getenv("ORCA_NATS_TOKEN"), "NATS token (env ORCA_NATS_TOKEN)")
	fs.StringVar(&o.NATS.NKeySeedFile, "nats-nkey-seed-file", "", "NATS nkey seed file")
	fs.StringVar(&o.NATS.CredsFile, "nats-creds-file", "", "NATS credentials file (JWT and nkey seed)")
	fs.StringVar(&o.NATS.TLSCAFile, "nats-tls-ca-file", "", "CA certificates to trust for NATS TLS")
	fs.StringVar(&o.NATS.TLSCertFile, "nats-tls-cert-file", "", "client certificate for NATS mutual TLS")
	fs.StringVar(&o.NATS.TLSKeyFile, "nats-tls-key-file", "", "client key for NATS mutual TLS")
	fs.StringVar(&o.NATS.InboxPrefix, "nats-inbox-prefix", os.Getenv("ORCA_NATS_INBOX_PREFIX"), "prefix of the NATS reply subjects (env ORCA_NATS_INBOX_PREFIX; default _INBOX.<nats user> with --nats-user, else _INBOX)")
	fs.StringVar(&o.NATS.Stream, "nats-stream", bus.DefaultStream, "JetStream stream of Orca's events")
	fs.IntVar(&o.Stream.Replicas, "stream-replicas", 1, "replicas of the stream when this service creates it")
	fs.DurationVar(&o.Stream.DuplicateWindow, "stream-duplicate-window", 2*time.Minute, "duplicate window of the stream when this service creates it")
	fs.DurationVar(&o.Stream.MaxAge, "stream-max-age", bus.DefaultStreamMaxAge, "how long the stream keeps events, when this service creates it")
	o.Stream.MaxBytes, o.Stream.MaxMsgs = bus.DefaultStreamMaxBytes, bus.DefaultStreamMaxMsgs
	fs.Func("stream-max-bytes", "size limit of the stream when this service creates it, e.g. 1Gi, -1 for none (default 1Gi); at the limit new events are refused", func(s string) error {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return err
		}
		o.Stream.MaxBytes = q.Value()
		return nil
	})
	fs.Int64Var(&o.Stream.MaxMsgs, "stream-max-msgs", bus.DefaultStreamMaxMsgs, "message limit of the stream when this service creates it, -1 for none; at the limit new events are refused")
	fs.DurationVar(&o.RetryFor, "retry-for", bus.DefaultRetryFor, "how long a consumed event whose handling keeps failing is retried before it is dead-lettered (cut to what --stream-max-age leaves)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 disables them)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader among replicas (scheduler and watcher)")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader election Lease (env POD_NAMESPACE)")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", DefaultLeaseDuration, "how long a standby waits after the leader's last renewal before it takes over (whole seconds)")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", DefaultRenewDeadline, "how long the leader tries to renew its lease before it gives up and exits")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", DefaultRetryPeriod, "how often the leader renews its lease and a standby tries to take it")
	fs.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&o.LogLevel, "log-level", slog.LevelInfo, "least level logged: debug, info, warn or error (debug adds controller-runtime's start-up lines)")

	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", -1, "requests a second to the API server, on the client's side (0 or less: no client-side limit; the API server's priority and fairness decides)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", 0, "bursts of requests to the API server above --kube-api-qps (default: twice the QPS)")
	fs.Float64Var(&o.TaskStatusQPS, "task-status-qps", 50, "watcher: Task status writes a second, all Tasks together, in bursts of a fifth of it (negative: no limit)")
}

// KubeAPILimits returns the client's QPS and burst for a rest.Config: -1 and -1
// (no client-side limit) unless --kube-api-qps is set.
func (o *Options) KubeAPILimits() (float32, int) {
	if o.KubeAPIQPS <= 0 {
		return -1, -1
	}
	burst := o.KubeAPIBurst
	if burst <= 0 {
		burst = max(1, int(2*o.KubeAPIQPS))
	}
	return float32(o.KubeAPIQPS), burst
}

// Complete fills what flags left empty from the environment and checks the result.
func (o *Options) Complete() error {
	if len(o.NATS.URLs) == 0 {
		if env := os.Getenv("ORCA_NATS_URL"); env != "" {
			o.NATS.URLs = splitList(env)
		}
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", o.LogFormat)
	}
	return o.checkLeaderElection()
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
