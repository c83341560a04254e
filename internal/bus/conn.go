package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options say how to reach NATS. The zero value connects to nats://127.0.0.1:4222.
type Options struct {
	// URLs of the NATS servers, comma-separated or one per element.
	URLs []string
	// Name identifies the connection in the server's monitoring.
	Name string

	// User and Password, or Token, or an NKeySeedFile, or a CredsFile (JWT + seed).
	User, Password string
	Token          string
	NKeySeedFile   string
	CredsFile      string

	// TLS: a CA file to trust, and a client certificate and key for mutual TLS.
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// TLSConfig, when set, is used as is.
	TLSConfig *tls.Config

	// Stream is the JetStream stream's name; default "ORCA".
	Stream string

	// InboxPrefix is the prefix of the reply subjects (JetStream's answers and
	// deliveries come there); default "_INBOX.<User>" with a User, else
	// "_INBOX". A NATS user that may subscribe only under its own prefix cannot
	// read the replies meant for another.
	InboxPrefix string

	// Logger receives connection events; default slog.Default().
	Logger *slog.Logger
}

// DefaultURL is where NATS is looked for when no URL is given.
const DefaultURL = "nats://127.0.0.1:4222"

// DefaultStream is the stream's default name.
const DefaultStream = "ORCA"

// Bus is a connection to NATS JetStream that publishes and consumes Orca's events.
type Bus struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	log    *slog.Logger
	state  state
	usage  usageLevel
}

// Connect connects to NATS, reconnecting forever with backoff when the connection
// drops. The first connection is also retried until ctx ends, so that services can
// start before NATS does.
func Connect(ctx context.Context, o Options) (*Bus, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	opts, err := o.natsOptions(log)
	if err != nil {
		return nil, err
	}
	urls := strings.Join(o.urls(), ",")
	var nc *nats.Conn
	for attempt := 0; ; attempt++ {
		nc, err = nats.Connect(urls, opts...)
		if err == nil {
			break
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("connect to nats %s: %w", urls, err)
		}
		log.Info("nats not reachable yet", "url", urls, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to nats %s: %w", urls, errors.Join(err, ctx.Err()))
		case <-time.After(backoff(attempt, 100*time.Millisecond, 5*time.Second)):
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	stream := o.Stream
	if stream == "" {
		stream = DefaultStream
	}
	return &Bus{nc: nc, js: js, stream: stream, log: log}, nil
}

func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}

func (o Options) urls() []string {
	var out []string
	for _, u := range o.URLs {
		for p := range strings.SplitSeq(u, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		out = []string{DefaultURL}
	}
	return out
}

func (o Options) natsOptions(log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return backoff(attempts, 100*time.Millisecond, 5*time.Second)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats error", "subject", subject, "err", err)
		}),
	}
	switch {
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed %s: %w", o.NKeySeedFile, err)
		}
		opts = append(opts, opt)
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if prefix := o.inboxPrefix(); prefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(prefix))
	}
	if o.TLSConfig != nil {
		opts = append(opts, nats.Secure(o.TLSConfig))
	}
	if o.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(o.TLSCAFile))
	}
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		opts = append(opts, nats.ClientCert(o.TLSCertFile, o.TLSKeyFile))
	}
	return opts, nil
}

// Close drains the connection: pending publishes are flushed first.
func (b *Bus) Close() error {
	if b.nc.IsClosed() {
		return nil
	}
	return b.nc.Drain()
}

// Conn returns the underlying NATS connection, for health checks.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Healthy reports whether the connection to NATS is up.
func (b *Bus) Healthy() error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats connection is %s", s)
	}
	return nil
}

// backoff returns lo*2^attempt, capped at hi.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
