package deploy_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sirocco-cloud/orca/internal/bus"
	"github.com/sirocco-cloud/orca/internal/cli"
)

// tenantMarker is the line of auth.conf before which namespaces' users go.
const tenantMarker = "      # Namespaces' own users (tenant-user.conf) go here.\n"

// tenantUser fills in base/nats/tenant-user.conf for a namespace, as the README's
// sed command does.
func tenantUser(t *testing.T, ns string) string {
	t.Helper()
	b, err := os.ReadFile(deployDir("base", "nats", "tenant-user.conf"))
	require.NoError(t, err)
	upper := strings.ToUpper(strings.ReplaceAll(ns, "-", "_"))
	return strings.NewReplacer("<namespace>", ns, "<NAMESPACE>", upper).Replace(string(b))
}

// authWithTenants writes base/nats/auth.conf with users for the namespaces, and
// their passwords into the environment; it returns the file.
func authWithTenants(t *testing.T, namespaces ...string) string {
	t.Helper()
	b, err := os.ReadFile(deployDir("base", "nats", "auth.conf"))
	require.NoError(t, err)
	conf := string(b)
	require.Contains(t, conf, tenantMarker)
	for _, ns := range namespaces {
		conf = strings.Replace(conf, tenantMarker, tenantUser(t, ns)+"\n"+tenantMarker, 1)
		t.Setenv("ORCA_TENANT_"+strings.ToUpper(strings.ReplaceAll(ns, "-", "_"))+"_PASSWORD", "pw"+strings.ReplaceAll(ns, "-", ""))
	}
	file := filepath.Join(t.TempDir(), "auth.conf")
	require.NoError(t, os.WriteFile(file, []byte(conf), 0o600))
	return file
}

// TestNamespaceUsersStayInTheirNamespace adds the users of two namespaces to the
// deployed auth.conf, as a platform team would, and has team-a's user do its job
// (fire team-a's ignitions, with `orca fire` too, and read team-a's task events,
// live and from the stream) and try what it may not: anything of team-b's,
// Orca's own events, the stream's messages, other inboxes.
func TestNamespaceUsersStayInTheirNamespace(t *testing.T) {
	setPasswords(t)
	srv := startNATS(t, authWithTenants(t, "team-a", "team-b"))
	ctx := t.Context()
	password := func(ns string) string { return "pw" + strings.ReplaceAll(ns, "-", "") }
	tenant := func(ns string) func(*bus.Options) {
		return func(o *bus.Options) { o.Password = password(ns) }
	}

	watcher := connect(t, srv, "orca-watcher")
	require.NoError(t, watcher.bus.EnsureStream(ctx, bus.StreamOptions{}))
	for _, ns := range []string{"team-a", "team-b"} {
		require.NoError(t, watcher.bus.PublishTaskEvent(ctx, taskEvent(true, ns, "build", "stored-"+ns)))
	}

	a := connect(t, srv, "tenant-team-a", tenant("team-a"))
	nc := rawConnWith(t, srv, "tenant-team-a", password("team-a"))

	// Its own namespace: fire ignitions (with the stream's ack), read task events.
	require.NoError(t, a.bus.PublishIgnition(ctx, ignition("team-a", "ignitor1", "a-fired")))
	live, err := nc.SubscribeSync("orca.task.*.team-a.>")
	require.NoError(t, err)
	deadLetters, err := nc.SubscribeSync("orca.deadletter.orca.ignited.team-a.>")
	require.NoError(t, err)
	notes, err := nc.SubscribeSync("orca-notify.team-a.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	require.NoError(t, watcher.bus.PublishTaskEvent(ctx, taskEvent(false, "team-b", "build", "live-b")))
	require.NoError(t, watcher.bus.PublishTaskEvent(ctx, taskEvent(false, "team-a", "build", "live-a")))
	msg, err := live.NextMsg(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, "orca.task.failed.team-a.build", msg.Subject, "team-b's event never reached it")
	for _, sub := range []*nats.Subscription{deadLetters, notes} {
		_, err := sub.NextMsg(200 * time.Millisecond)
		assert.ErrorIs(t, err, nats.ErrTimeout, "%s is allowed", sub.Subject)
	}

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.DefaultStream, jetstream.ConsumerConfig{
		Durable: "tenant-team-a", FilterSubject: "orca.task.*.team-a.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err, "its durable, on its task events")
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	var ids []string
	for m := range batch.Messages() {
		ids = append(ids, m.Headers().Get("ce-id"))
		require.NoError(t, m.DoubleAck(ctx))
	}
	require.NoError(t, batch.Error())
	assert.ElementsMatch(t, []string{"stored-team-a", "live-a"}, ids)
	a.clean(t)

	// `orca fire` works with the namespace's user, in its namespace only.
	fire := func(ns string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, []string{"orca", "fire", "ignitor1", "-n", ns, "--no-check", "--timeout", "2s",
			"--nats-url", srv.URL(), "--nats-user", "tenant-team-a", "--nats-password", password("team-a")}, nil, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	code, out := fire("team-a")
	assert.Equal(t, 0, code, out)
	code, out = fire("team-b")
	assert.Equal(t, 1, code, "firing in team-b: %s", out)

	// Anything of another namespace, or of Orca's own, is refused.
	a.refused(t, "firing team-b's ignition", func(ctx context.Context) error {
		return a.bus.PublishIgnition(ctx, ignition("team-b", "ignitor1", "a-in-b"))
	})
	a.refused(t, "forging a task event of its own namespace", func(ctx context.Context) error {
		return a.bus.PublishTaskEvent(ctx, taskEvent(true, "team-a", "build", "a-forged"))
	})
	a.refusedSubjects(t,
		"orca.ignited.team-b.ignitor1", "orca.task.succeeded.team-a.build", "orca.deadletter.orca.ignited.team-a.x",
		"orca-notify.team-a.x", "$JS.API.STREAM.INFO.ORCA", "$JS.API.STREAM.MSG.GET.ORCA", "$JS.API.DIRECT.GET.ORCA",
		"$JS.API.CONSUMER.CREATE.ORCA.tenant-team-a.orca.task.*.team-b.>", "$JS.API.CONSUMER.CREATE.ORCA.tenant-team-a",
		"$JS.API.CONSUMER.CREATE.ORCA.tenant-team-b.orca.task.*.team-a.>", "$JS.API.CONSUMER.MSG.NEXT.ORCA.tenant-team-b",
		"$JS.ACK.ORCA.tenant-team-b.1.2.3.4.5.6", "$JS.ACK.ORCA.orca-actions.1.2.3.4.5.6", "_INBOX.tenant-team-b.x",
		// Orca's state bucket: consumer positions, ledgers, admission records.
		"$JS.API.STREAM.INFO.KV_ORCA_STATE", "$JS.API.STREAM.CREATE.KV_ORCA_STATE",
		"$KV.ORCA_STATE.position.orca-dispatcher", "$KV.ORCA_STATE.ledger.actions.x",
		"$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.ledger.actions.x",
		"$KV.ORCA_STATE.ledger.pods.x", "$KV.ORCA_STATE.records.admission.slots.x",
		// A forbidden start is the dispatcher's to report.
		"orca.task.forbidden.team-a.build",
	)
	for _, subject := range []string{
		"orca.task.*.team-b.>", "orca.task.>", "orca.ignited.team-a.>", "orca.ignited.>", "orca.deadletter.>",
		"orca-notify.team-b.>", "_INBOX.>", "_INBOX.tenant-team-b.>", "_INBOX.orca-actions.>", ">",
	} {
		sub, err := nc.SubscribeSync(subject)
		require.NoError(t, err)
		_, err = sub.NextMsg(2 * time.Second)
		assert.ErrorIs(t, err, nats.ErrPermissionViolation, "subscribing to %s", subject)
	}
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	_, err = js.CreateOrUpdateConsumer(short, bus.DefaultStream, jetstream.ConsumerConfig{
		Durable: "tenant-team-a", FilterSubject: "orca.task.*.team-b.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	assert.Error(t, err, "its durable may not filter team-b's events")
}

// rawConnWith connects as a NATS user with nats.go, its inbox under its own
// prefix; a refused subscription shows as nats.ErrPermissionViolation on NextMsg.
func rawConnWith(t *testing.T, srv *bus.Embedded, user, password string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.URL(), nats.UserInfo(user, password),
		nats.CustomInboxPrefix("_INBOX."+user), nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	require.NoError(t, err, "%s connects", user)
	t.Cleanup(nc.Close)
	return nc
}
