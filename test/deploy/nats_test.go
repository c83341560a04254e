package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	orcaactions "github.com/sirocco-cloud/orca/internal/actions"
	"github.com/sirocco-cloud/orca/internal/bus"
	orcadispatcher "github.com/sirocco-cloud/orca/internal/dispatcher"
	"github.com/sirocco-cloud/orca/internal/testenv"
)

// natsUsers are the users of base/nats/auth.conf.
var natsUsers = []string{"orca-scheduler", "orca-dispatcher", "orca-watcher", "orca-actions", "ignition-publisher", "event-reader"}

// passwordVar returns the environment variable that holds a NATS user's password,
// as auth.conf and credentials.env spell it.
func passwordVar(user string) string {
	return "ORCA_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(user, "orca-"), "-", "_")) + "_PASSWORD"
}

// readEnvFile reads a KEY=VALUE file as kustomize's secretGenerator does.
func readEnvFile(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		out[k] = v
	}
	require.NoError(t, sc.Err())
	return out
}

// setPasswords puts the deployed passwords (credentials.env) into the environment,
// where nats-server reads the $ORCA_*_PASSWORD references of auth.conf, as the
// StatefulSet's envFrom does. It returns them.
func setPasswords(t *testing.T) map[string]string {
	t.Helper()
	pw := readEnvFile(t, deployDir("base", "nats", "credentials.env"))
	for _, u := range natsUsers {
		require.Contains(t, pw, passwordVar(u), "credentials.env has %s's password", u)
	}
	for k, v := range pw {
		t.Setenv(k, v)
	}
	return pw
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o600))
}

// rawConn connects as a NATS user with nats.go, its inbox under its own prefix;
// a refused subscription shows as nats.ErrPermissionViolation on NextMsg.
func rawConn(t *testing.T, srv *bus.Embedded, user string) *nats.Conn {
	t.Helper()
	return rawConnWith(t, srv, user, os.Getenv(passwordVar(user)))
}

// startNATS starts an embedded nats-server with JetStream whose configuration is
// the deployed auth.conf (authFile) and, when given, more files to include (name,
// content).
func startNATS(t *testing.T, authFile string, includes ...[2]string) *bus.Embedded {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, authFile, filepath.Join(dir, "auth.conf"))
	conf := "include ./auth.conf\n"
	for _, inc := range includes {
		require.NoError(t, os.WriteFile(filepath.Join(dir, inc[0]), []byte(inc[1]), 0o600))
		conf += "include ./" + inc[0] + "\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.conf"), []byte(conf), 0o600))
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: t.TempDir(), ConfigFile: filepath.Join(dir, "server.conf")})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return srv
}

// violations returns the lines of a bus's log that report a permissions violation.
func violations(log *testenv.Buffer) []string {
	var out []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(strings.ToLower(line), "permissions violation") {
			out = append(out, line)
		}
	}
	return out
}

// user is a bus connected as one NATS user, with its log.
type user struct {
	name string
	bus  *bus.Bus
	log  *testenv.Buffer
}

func connect(t *testing.T, srv *bus.Embedded, name string, opts ...func(*bus.Options)) *user {
	t.Helper()
	u := &user{name: name, log: &testenv.Buffer{}}
	o := bus.Options{
		URLs: []string{srv.URL()}, Name: name, User: name, Password: os.Getenv(passwordVar(name)),
		Logger: slog.New(slog.NewTextHandler(u.log, nil)),
	}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, o)
	require.NoError(t, err, "%s connects", name)
	t.Cleanup(func() { _ = b.Close() })
	u.bus = b
	return u
}

// refused expects an operation to fail within a short time, and the user's
// connection to report a permissions violation.
func (u *user) refused(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	before := len(violations(u.log))
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	err := op(ctx)
	assert.Error(t, err, "%s: %s should be refused", u.name, what)
	u.expectViolation(t, what, before)
}

// expectViolation waits for a new permissions violation in the user's log.
func (u *user) expectViolation(t *testing.T, what string, before int) {
	t.Helper()
	err := testenv.Eventually(t.Context(), 3*time.Second, func(context.Context) (bool, error) {
		return len(violations(u.log)) > before, nil
	})
	assert.NoError(t, err, "%s: %s should be a permissions violation; log:\n%s", u.name, what, u.log.String())
}

// refusedSubjects has the user publish a task event on each subject, with a core
// publish (which the server does not answer), and expects a permissions
// violation for each.
func (u *user) refusedSubjects(t *testing.T, subjects ...string) {
	t.Helper()
	ev, err := taskEvent(true, "team-a", "task1", u.name+"-forged").Event()
	require.NoError(t, err)
	for _, subject := range subjects {
		before := len(violations(u.log))
		require.NoError(t, u.bus.Republish(subject, ev), "a core publish is not answered")
		u.expectViolation(t, "publishing on "+subject, before)
	}
}

// positionSaved waits until the consumer's position is in Orca's state bucket,
// read by the user with nats.go: a direct get of that one key.
func positionSaved(t *testing.T, srv *bus.Embedded, user, consumer string) {
	t.Helper()
	js, err := jetstream.New(rawConn(t, srv, user))
	require.NoError(t, err)
	kv, err := js.KeyValue(t.Context(), bus.StateBucket(bus.DefaultStream))
	require.NoError(t, err, "%s opens the state bucket", user)
	var p bus.ConsumerPosition
	err = testenv.Eventually(t.Context(), 10*time.Second, func(ctx context.Context) (bool, error) {
		e, err := kv.Get(ctx, "position."+consumer)
		if err != nil {
			return false, err
		}
		return json.Unmarshal(e.Value(), &p) == nil && p.Sequence > 0, nil
	})
	require.NoError(t, err, "%s reads the saved position of %s", user, consumer)
}

// clean checks that the user met no permissions violation so far.
func (u *user) clean(t *testing.T) {
	t.Helper()
	// An asynchronous -ERR from the server arrives before the answer to a flush.
	require.NoError(t, u.bus.Conn().Flush())
	time.Sleep(50 * time.Millisecond)
	assert.Empty(t, violations(u.log), "%s met a permissions violation", u.name)
}

func ignition(ns, name, id string) bus.Ignition {
	return bus.Ignition{ID: id, Source: "test/deploy", Namespace: ns, Name: name, Data: []byte("data of " + id), Time: time.Now()}
}

func taskEvent(succeeded bool, ns, task, id string) bus.TaskEvent {
	return bus.TaskEvent{ID: id, Source: "test/deploy", Succeeded: succeeded, Result: bus.TaskResult{
		Task: task, Namespace: ns, Pod: task + "-pod", Run: "run-1", Initiator: "ignitor1", Message: "42", FinishedAt: time.Now(),
	}}
}

func retryEvent(ns, task, id string) bus.RetryEvent {
	return bus.RetryEvent{ID: id, Source: "test/deploy", Retry: bus.TaskRetry{
		TaskResult:  bus.TaskResult{Task: task, Namespace: ns, Pod: task + "-pod", Run: "run-1", Initiator: "ignitor1", Attempt: 1, FinishedAt: time.Now()},
		NextAttempt: 2, RetryAt: time.Now(), TriggerSource: "test/deploy", TriggerID: "ig-1",
	}}
}

func forbiddenStart(ns, task, pod string) bus.ForbiddenStart {
	return bus.ForbiddenStart{
		Task: task, Namespace: ns, TaskUID: "uid-1", Pod: pod, Run: "run-1", Initiator: "ignitor1",
		TriggerSource: "test/deploy", TriggerID: "ig-1", Parallelism: 1, Running: []string{task + "-pod"}, Time: time.Now(),
	}
}

func haltEvent(ns, task, id string) bus.HaltEvent {
	return bus.HaltEvent{ID: id, Source: "test/deploy", Halt: bus.TaskHalt{
		Task: task, Namespace: ns, Run: "run-1", Initiator: "ignitor1", Attempt: 1, Steps: 10, Limit: 10, HaltedAt: time.Now(),
	}}
}

// received records the deliveries a consumer handled, by event id.
type received struct {
	mu     sync.Mutex
	counts map[string]int
	subj   map[string]string
}

func newReceived() *received { return &received{counts: map[string]int{}, subj: map[string]string{}} }

func (r *received) add(d *bus.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[d.Event.ID()]++
	r.subj[d.Event.ID()] = d.Subject
}

func (r *received) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

// consumeAll consumes as the user's durable until the ids arrived, waits long
// enough for any redelivery (a failed ack or dead letter comes back after
// AckWait, a failed nak at once), and checks each id was handled exactly once.
func consumeAll(t *testing.T, u *user, o bus.ConsumerOptions, ids []string, h func(*bus.Delivery) error) {
	t.Helper()
	o.AckWait, o.RetryMin, o.RetryMax = time.Second, 50*time.Millisecond, 100*time.Millisecond
	got := newReceived()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, err := u.bus.Consume(ctx, o, func(_ context.Context, d *bus.Delivery) error {
		got.add(d)
		return h(d)
	})
	require.NoError(t, err, "%s consumes as %s", u.name, o.Name)
	err = testenv.Eventually(t.Context(), 10*time.Second, func(context.Context) (bool, error) {
		s := got.snapshot()
		for _, id := range ids {
			if s[id] == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "%s received %v, wants %v", o.Name, got.snapshot(), ids)
	time.Sleep(2500 * time.Millisecond)
	want := map[string]int{}
	for _, id := range ids {
		want[id] = 1
	}
	assert.Equal(t, want, got.snapshot(), "%s: each event handled once (acked or dead-lettered, never redelivered)", o.Name)
	c.Stop()
	u.clean(t)
}

// TestNATSUsersMayDoTheirJobAndNoMore loads the deployed auth.conf into a
// nats-server and has each user do its job through internal/bus (nats.go for the
// external reader), and what it may not.
func TestNATSUsersMayDoTheirJobAndNoMore(t *testing.T) {
	setPasswords(t)
	srv := startNATS(t, deployDir("base", "nats", "auth.conf"))
	ctx := t.Context()
	const ns = "team-a"

	// An unknown user, or a wrong password, gets nowhere.
	_, err := bus.Connect(ctx, bus.Options{URLs: []string{srv.URL()}, User: "orca-scheduler", Password: "wrong"})
	require.Error(t, err)
	_, err = bus.Connect(ctx, bus.Options{URLs: []string{srv.URL()}})
	require.Error(t, err)

	scheduler := connect(t, srv, "orca-scheduler")
	watcher := connect(t, srv, "orca-watcher")
	dispatcher := connect(t, srv, "orca-dispatcher")
	actions := connect(t, srv, "orca-actions")
	publisher := connect(t, srv, "ignition-publisher")

	t.Run("scheduler", func(t *testing.T) {
		require.NoError(t, scheduler.bus.EnsureStream(ctx, bus.StreamOptions{}), "creates the stream")
		require.NoError(t, scheduler.bus.PublishIgnition(ctx, ignition(ns, "ignitor1", "ig-scheduled")))
		scheduler.clean(t)
		scheduler.refused(t, "publishing a task event", func(ctx context.Context) error {
			return scheduler.bus.PublishTaskEvent(ctx, taskEvent(true, ns, "task1", "sched-forged"))
		})
		// It consumes nothing: Orca's state bucket is not for it.
		scheduler.refusedSubjects(t, "$JS.API.STREAM.INFO.KV_ORCA_STATE", "$JS.API.STREAM.CREATE.KV_ORCA_STATE",
			"$KV.ORCA_STATE.position.orca-dispatcher", "$KV.ORCA_STATE.ledger.pods.x", "$KV.ORCA_STATE.records.admission.x",
			"orca.task.forbidden.team-a.task1")
	})

	t.Run("watcher", func(t *testing.T) {
		require.NoError(t, watcher.bus.EnsureStream(ctx, bus.StreamOptions{}), "finds the stream")
		require.NoError(t, watcher.bus.PublishTaskEvent(ctx, taskEvent(true, ns, "task1", "te-ok")))
		require.NoError(t, watcher.bus.PublishTaskEvent(ctx, taskEvent(false, ns, "task2", "te-ko")))
		require.NoError(t, watcher.bus.PublishRetry(ctx, retryEvent(ns, "task4", "te-retry")))
		// Before it deletes a Pod after its run (history limits, TTL), it records
		// it in the ledger of removed Pods, in Orca's state bucket (which it
		// creates when it is the first to need it).
		require.NoError(t, watcher.bus.RemovedPods().Record(ctx, "uid-1", "task1-removed"))
		watcher.clean(t)
		watcher.refused(t, "publishing an ignition", func(ctx context.Context) error {
			return watcher.bus.PublishIgnition(ctx, ignition(ns, "ignitor1", "watch-forged"))
		})
		// It writes that ledger, and touches nothing else there: it does not read
		// it (the dispatcher does), nor the dispatcher's admission records.
		watcher.refused(t, "reading the ledger of removed Pods", func(ctx context.Context) error {
			_, err := watcher.bus.RemovedPods().Done(ctx, "uid-1", "task1-removed")
			return err
		})
		watcher.refused(t, "writing the dispatcher's admission records", func(ctx context.Context) error {
			return watcher.bus.Records(orcadispatcher.RecordsAdmission).Put(ctx, "slots.uid-1", []byte("{}"))
		})
		watcher.refused(t, "publishing a forbidden event", func(ctx context.Context) error {
			return watcher.bus.PublishForbidden(ctx, "test/deploy", forbiddenStart(ns, "task1", "watch-forged-forbidden"))
		})
		watcher.refusedSubjects(t, "$KV.ORCA_STATE.ledger.actions.forged", "$KV.ORCA_STATE.ledger.forbidden.forged",
			"$KV.ORCA_STATE.ledger.pods.x.y", "$KV.ORCA_STATE.position.orca-dispatcher", "$KV.ORCA_STATE.records.admission.x",
			"$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.ledger.pods.x", "$JS.API.STREAM.PURGE.KV_ORCA_STATE")
		watcher.refused(t, "publishing a halted event", func(ctx context.Context) error {
			return watcher.bus.PublishHalt(ctx, haltEvent(ns, "task1", "watch-forged-halt"))
		})
	})

	t.Run("ignition-publisher", func(t *testing.T) {
		require.NoError(t, publisher.bus.PublishIgnition(ctx, ignition(ns, "external", "ig-external")))
		require.NoError(t, publisher.bus.PublishIgnition(ctx, ignition(ns, "poison", "ig-poison")))
		publisher.clean(t)
		publisher.refused(t, "publishing a task event", func(ctx context.Context) error {
			return publisher.bus.PublishTaskEvent(ctx, taskEvent(true, ns, "task1", "ext-forged"))
		})
	})

	t.Run("dispatcher", func(t *testing.T) {
		require.NoError(t, dispatcher.bus.EnsureStream(ctx, bus.StreamOptions{}))
		// It consumes ignitions and task events, acks them, and dead-letters what
		// it cannot use.
		consumeAll(t, dispatcher, bus.ConsumerOptions{
			Name: "orca-dispatcher", Subjects: append([]string{bus.FilterIgnitions, bus.SubjectTaskRetrying + ".>", bus.SubjectTaskSkipped + ".>"}, bus.FilterTaskEvents...),
		}, []string{"ig-scheduled", "ig-external", "ig-poison", "te-ok", "te-ko", "te-retry"}, func(d *bus.Delivery) error {
			if d.Event.ID() == "ig-poison" {
				return bus.Permanent(errors.New("test: unusable"))
			}
			return nil
		})
		// It keeps its position in Orca's state bucket and reads it back.
		positionSaved(t, srv, "orca-dispatcher", "orca-dispatcher")
		// Its loop guard counts each run's steps and says when it halts a run.
		_, steps, err := dispatcher.bus.Counters("steps").Update(ctx, func(n int64) int64 { return n + 1 }, ns, "run-1")
		require.NoError(t, err)
		assert.Equal(t, int64(1), steps)
		require.NoError(t, dispatcher.bus.PublishHalt(ctx, haltEvent(ns, "task1", "halt-1")))
		// Its admission of limited Tasks keeps each one's slots and waiting starts
		// (a start's key holds the Pod's name, dots and all) and the starts that
		// concurrencyPolicy Forbid skipped, publishes the forbidden event, and
		// reads the Pods that the watcher removed.
		records := dispatcher.bus.Records(orcadispatcher.RecordsAdmission)
		require.NoError(t, records.Update(ctx, "slots.uid-1", func([]byte) ([]byte, error) { return []byte(`{"holders":[]}`), nil }))
		require.NoError(t, records.Put(ctx, "start.uid-1.task.1-abc", []byte(`{}`)))
		got, err := records.Get(ctx, "start.uid-1.task.1-abc")
		require.NoError(t, err)
		assert.Equal(t, []byte(`{}`), got)
		require.NoError(t, records.Delete(ctx, "start.uid-1.task.1-abc"))
		require.NoError(t, records.Update(ctx, "slots.uid-1", func([]byte) ([]byte, error) { return nil, nil }))
		forbidden := dispatcher.bus.Ledger(orcadispatcher.LedgerForbidden)
		require.NoError(t, forbidden.Record(ctx, "uid-1", "task1-forbidden"))
		done, err := forbidden.Done(ctx, "uid-1", "task1-forbidden")
		require.NoError(t, err)
		assert.True(t, done, "the forbidden start is recorded")
		require.NoError(t, dispatcher.bus.PublishForbidden(ctx, orcadispatcher.SourceDispatcher, forbiddenStart(ns, "task1", "task1-forbidden")))
		removed, err := dispatcher.bus.RemovedPods().Done(ctx, "uid-1", "task1-removed")
		require.NoError(t, err)
		assert.True(t, removed, "the dispatcher reads what the watcher recorded")
		dispatcher.clean(t)
		// It touches no other entry there: not the actions service's position,
		// nor its ledger, nor the watcher's (which it reads only).
		dispatcher.refused(t, "writing the actions service's ledger", func(ctx context.Context) error {
			return dispatcher.bus.Ledger(orcaactions.LedgerName).Record(ctx, "notify", "te-ok")
		})
		dispatcher.refused(t, "reading the actions service's ledger", func(ctx context.Context) error {
			_, err := dispatcher.bus.Ledger(orcaactions.LedgerName).Done(ctx, "notify", "te-ok")
			return err
		})
		dispatcher.refusedSubjects(t,
			"$KV.ORCA_STATE.position.orca-actions", "$KV.ORCA_STATE.position.orca-spy",
			"$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.position.orca-actions",
			"$JS.API.DIRECT.GET.KV_ORCA_STATE", "$JS.API.STREAM.MSG.GET.KV_ORCA_STATE",
			"$JS.API.STREAM.PURGE.KV_ORCA_STATE", "$JS.API.STREAM.DELETE.KV_ORCA_STATE",
			"$JS.API.STREAM.UPDATE.KV_ORCA_STATE", "$JS.API.CONSUMER.CREATE.KV_ORCA_STATE",
		)
		// The direct get of its own key names the key in the subject: a body that
		// asks for another message is turned down.
		msg, err := rawConn(t, srv, "orca-dispatcher").Request(
			"$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.position.orca-dispatcher", []byte(`{"seq":1}`), 2*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "408", msg.Header.Get("Status"), "a direct get of another sequence")
		assert.Empty(t, msg.Data)
		dispatcher.refused(t, "writing the ledger of removed Pods", func(ctx context.Context) error {
			return dispatcher.bus.RemovedPods().Record(ctx, "uid-1", "task1-not-removed")
		})
		dispatcher.refused(t, "writing other records", func(ctx context.Context) error {
			return dispatcher.bus.Records("other").Put(ctx, "x", []byte("{}"))
		})
		dispatcher.refusedSubjects(t, "$KV.ORCA_STATE.ledger.pods.x", "$KV.ORCA_STATE.ledger.forbidden.x.y",
			"$KV.ORCA_STATE.records.other.x", "$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.records.other.x")
		dispatcher.refused(t, "publishing a retrying event", func(ctx context.Context) error {
			return dispatcher.bus.PublishRetry(ctx, retryEvent(ns, "task1", "disp-forged-retry"))
		})
		dispatcher.refused(t, "counting with another service's counters", func(ctx context.Context) error {
			_, _, err := dispatcher.bus.Counters("other").Update(ctx, func(n int64) int64 { return n + 1 }, ns, "run-1")
			return err
		})
		dispatcher.refused(t, "publishing orca.task.succeeded", func(ctx context.Context) error {
			return dispatcher.bus.PublishTaskEvent(ctx, taskEvent(true, "x", "y", "disp-forged"))
		})
		dispatcher.refused(t, "publishing an ignition", func(ctx context.Context) error {
			return dispatcher.bus.PublishIgnition(ctx, ignition(ns, "ignitor1", "disp-forged-ig"))
		})
		dispatcher.refused(t, "taking the actions service's consumer", func(ctx context.Context) error {
			_, err := dispatcher.bus.Consume(ctx, bus.ConsumerOptions{Name: "orca-actions", Subjects: bus.FilterTaskEvents}, func(context.Context, *bus.Delivery) error { return nil })
			return err
		})
	})

	t.Run("actions", func(t *testing.T) {
		require.NoError(t, actions.bus.EnsureStream(ctx, bus.StreamOptions{}))
		// It consumes task events and, as the nats plugin does, republishes them
		// to subjects outside Orca's.
		consumeAll(t, actions, bus.ConsumerOptions{Name: "orca-actions", Subjects: bus.FilterTaskEvents},
			[]string{"te-ok", "te-ko"}, func(d *bus.Delivery) error {
				return actions.bus.Republish("orca-notify.team-a."+d.Task.Result.Task, d.Event)
			})
		// It keeps its position and its ledger of actions run in Orca's state bucket.
		positionSaved(t, srv, "orca-actions", "orca-actions")
		ledger := actions.bus.Ledger(orcaactions.LedgerName)
		require.NoError(t, ledger.Record(ctx, "notify", "te-ok"))
		done, err := ledger.Done(ctx, "notify", "te-ok")
		require.NoError(t, err)
		assert.True(t, done, "the ledger has what it recorded")
		actions.clean(t)
		// Everything outside its allow-list is refused: Orca's events, reading any
		// stored message, other consumers and their acks and positions, other
		// ledgers, JetStream administration (the API calls of later NATS versions
		// too), other subjects, inboxes.
		actions.refusedSubjects(t,
			"orca.ignited.team-a.ignitor1", "orca.task.succeeded.team-a.task1",
			"$JS.API.STREAM.MSG.GET.ORCA", "$JS.API.DIRECT.GET.ORCA", "$JS.API.STREAM.DELETE.ORCA", "$JS.API.STREAM.PURGE.ORCA",
			"$JS.API.STREAM.UPDATE.ORCA", "$JS.API.STREAM.LIST", "$JS.API.CONSUMER.LIST.ORCA",
			"$JS.API.CONSUMER.DELETE.ORCA.orca-dispatcher", "$JS.API.CONSUMER.RESET.ORCA.orca-dispatcher",
			"$JS.API.CONSUMER.CREATE.ORCA.event-reader", "$JS.API.CONSUMER.CREATE.ORCA.orca-spy",
			"$JS.API.CONSUMER.MSG.NEXT.ORCA.event-reader", "$JS.ACK.ORCA.orca-dispatcher.1.2.3.4.5.6",
			"$JS.ACK.ORCA.event-reader.1.2.3.4.5.6",
			"$KV.ORCA_STATE.position.orca-dispatcher", "$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.position.orca-dispatcher",
			"$KV.ORCA_STATE.ledger.other.x", "$KV.ORCA_STATE.ledger.actions.x.y",
			"$KV.ORCA_STATE.ledger.pods.x", "$KV.ORCA_STATE.ledger.forbidden.x", "$KV.ORCA_STATE.records.admission.slots.x",
			"$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.ledger.pods.x",
			"$JS.API.DIRECT.GET.KV_ORCA_STATE.$KV.ORCA_STATE.records.admission.slots.x",
			"orca.task.forbidden.team-a.task1",
			"$JS.API.DIRECT.GET.KV_ORCA_STATE", "$JS.API.STREAM.MSG.GET.KV_ORCA_STATE", "$JS.API.STREAM.PURGE.KV_ORCA_STATE",
			"$JS.API.STREAM.DELETE.KV_ORCA_STATE", "$JS.API.STREAM.UPDATE.KV_ORCA_STATE",
			"alerts.builds", "orca-notify", "_INBOX.someone.else",
		)
		actions.refused(t, "taking the dispatcher's consumer", func(ctx context.Context) error {
			_, err := actions.bus.Consume(ctx, bus.ConsumerOptions{Name: "orca-dispatcher", Subjects: bus.FilterTaskEvents}, func(context.Context, *bus.Delivery) error { return nil })
			return err
		})
		actions.refused(t, "publishing an ignition", func(ctx context.Context) error {
			return actions.bus.PublishIgnition(ctx, ignition(ns, "ignitor1", "act-forged-ig"))
		})
	})

	// The dispatcher's joins: its bucket, the skips, failures and timers it
	// publishes, and the timers' own consumer.
	t.Run("dispatcher joins", func(t *testing.T) {
		dispatcher := connect(t, srv, "orca-dispatcher") // a log without the refusals above
		store := dispatcher.bus.JoinStore()
		ok, err := store.Swap(ctx, "s.team-a.d.run1", []byte("{}"), 0)
		require.NoError(t, err)
		assert.True(t, ok)
		_, rev, err := store.Get(ctx, "s.team-a.d.run1")
		require.NoError(t, err)
		assert.NotZero(t, rev)
		require.NoError(t, store.Mark(ctx, "w.team-a.d.100.run1", time.Minute))
		keys, err := store.Marked(ctx, "w.team-a.d.*.*")
		require.NoError(t, err)
		assert.Equal(t, []string{"w.team-a.d.100.run1"}, keys)
		require.NoError(t, store.Unmark(ctx, "w.team-a.d.100.run1"))

		require.NoError(t, dispatcher.bus.PublishTaskSkipped(ctx, bus.TaskSkipped{ID: "join-skip", Source: "test/deploy", Result: taskEvent(false, ns, "d", "").Result}))
		require.NoError(t, dispatcher.bus.PublishTaskEvent(ctx, taskEvent(false, ns, "d", "join-timeout")))
		require.NoError(t, dispatcher.bus.PublishJoinTimer(ctx, bus.JoinTimer{ID: "join-timer", Source: "test/deploy", Namespace: ns, Task: "d", TaskUID: "uid", Run: "run-1"}))
		consumeAll(t, dispatcher, bus.ConsumerOptions{Name: "orca-joins", Subjects: []string{bus.SubjectJoinTimer + ".>"}},
			[]string{"join-timer"}, func(*bus.Delivery) error { return nil })
		dispatcher.refused(t, "publishing orca.task.succeeded", func(ctx context.Context) error {
			return dispatcher.bus.PublishTaskEvent(ctx, taskEvent(true, ns, "d", "join-forged"))
		})
		actions.refused(t, "writing the join bucket", func(ctx context.Context) error {
			_, err := actions.bus.JoinStore().Swap(ctx, "s.team-a.d.run2", []byte("{}"), 0)
			return err
		})
	})

	// Each user reads replies on its own inbox only: not on another's, nor on all.
	t.Run("inboxes", func(t *testing.T) {
		for _, u := range []string{"orca-actions", "ignition-publisher"} {
			nc := rawConn(t, srv, u)
			for _, subject := range []string{"_INBOX.>", "_INBOX.orca-dispatcher.>", "_INBOX.*.>", ">"} {
				sub, err := nc.SubscribeSync(subject)
				require.NoError(t, err)
				_, err = sub.NextMsg(2 * time.Second)
				assert.ErrorIs(t, err, nats.ErrPermissionViolation, "%s subscribing to %s", u, subject)
			}
		}
	})

	t.Run("event-reader", func(t *testing.T) {
		var asyncErrs testenv.Buffer
		nc, err := nats.Connect(srv.URL(), nats.UserInfo("event-reader", os.Getenv(passwordVar("event-reader"))),
			nats.PermissionErrOnSubscribe(true), nats.CustomInboxPrefix("_INBOX.event-reader"),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				_, _ = asyncErrs.Write([]byte(err.Error() + "\n"))
			}))
		require.NoError(t, err)
		defer nc.Close()

		// A core subscription sees task events as they are published.
		live, err := nc.SubscribeSync("orca.task.>")
		require.NoError(t, err)
		require.NoError(t, nc.Flush())
		require.NoError(t, watcher.bus.PublishTaskEvent(ctx, taskEvent(true, ns, "task3", "te-live")))
		msg, err := live.NextMsg(5 * time.Second)
		require.NoError(t, err)
		assert.Equal(t, "orca.task.succeeded.team-a.task3", msg.Subject)

		// Ignitions are not for it.
		ign, err := nc.SubscribeSync("orca.ignited.>")
		require.NoError(t, err)
		_, err = ign.NextMsg(3 * time.Second)
		assert.ErrorIs(t, err, nats.ErrPermissionViolation)

		// A JetStream consumer named event-reader, filtered under orca.task.>, reads
		// what the stream stored.
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		cons, err := js.CreateOrUpdateConsumer(ctx, bus.DefaultStream, jetstream.ConsumerConfig{
			Durable: "event-reader", FilterSubject: "orca.task.>", AckPolicy: jetstream.AckExplicitPolicy,
		})
		require.NoError(t, err)
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		var ids []string
		for m := range batch.Messages() {
			ids = append(ids, m.Headers().Get("ce-id"))
			require.NoError(t, m.DoubleAck(ctx))
		}
		require.NoError(t, batch.Error())
		assert.ElementsMatch(t, []string{"te-ok", "te-ko", "join-skip", "join-timeout", "te-retry", "halt-1", "task1-forbidden", "te-live"}, ids, "the forged task events were never stored")

		short := func() context.Context {
			c, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			t.Cleanup(cancel)
			return c
		}
		_, err = js.CreateOrUpdateConsumer(short(), bus.DefaultStream, jetstream.ConsumerConfig{
			Durable: "event-reader", FilterSubject: "orca.ignited.>", AckPolicy: jetstream.AckExplicitPolicy,
		})
		assert.Error(t, err, "its consumer may not filter ignitions")
		_, err = js.CreateOrUpdateConsumer(short(), bus.DefaultStream, jetstream.ConsumerConfig{
			Durable: "orca-reader2", FilterSubject: "orca.task.>", AckPolicy: jetstream.AckExplicitPolicy,
		})
		assert.Error(t, err, "it has one consumer name")
		require.NoError(t, nc.Publish("orca.ignited.team-a.ignitor1", []byte("x")))
		require.NoError(t, nc.Flush())
		err = testenv.Eventually(ctx, 3*time.Second, func(context.Context) (bool, error) {
			return strings.Contains(asyncErrs.String(), `Publish to "orca.ignited.team-a.ignitor1"`), nil
		})
		assert.NoError(t, err, "it publishes no ignition: %s", asyncErrs.String())

		// The stream is whole, and holds none of the refused publishes.
		stream, err := js.Stream(ctx, bus.DefaultStream)
		require.NoError(t, err)
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("orca.>"))
		require.NoError(t, err)
		subjects := slices.Sorted(maps.Keys(info.State.Subjects))
		assert.Equal(t, []string{
			"orca.deadletter.orca.ignited.team-a.poison",
			"orca.ignited.team-a.external",
			"orca.ignited.team-a.ignitor1",
			"orca.ignited.team-a.poison",
			"orca.join.timer.team-a.d",
			"orca.task.failed.team-a.d",
			"orca.task.failed.team-a.task2",
			"orca.task.forbidden.team-a.task1",
			"orca.task.halted.team-a.task1",
			"orca.task.retrying.team-a.task4",
			"orca.task.skipped.team-a.d",
			"orca.task.succeeded.team-a.task1",
			"orca.task.succeeded.team-a.task3",
		}, subjects, "the dispatcher's dead letter is stored; no forged event is")
		assert.Equal(t, uint64(13), info.State.Msgs)
	})

	// Only Orca's stream may exist in the account.
	t.Run("one stream", func(t *testing.T) {
		js, err := jetstream.New(rawConn(t, srv, "orca-scheduler"))
		require.NoError(t, err)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = js.CreateStream(cctx, jetstream.StreamConfig{Name: bus.DefaultStream + "2", Subjects: []string{"mirror.>"}})
		assert.Error(t, err, "the scheduler, who may create a stream, cannot add a second one")
	})
}

// TestNamespacedNATSUsersUseTheScopedDurables loads overlays/namespaced's auth.conf:
// the dispatcher and actions services of that scope consume under the durable
// names internal/bus gives them, and not under the cluster-wide ones.
func TestNamespacedNATSUsersUseTheScopedDurables(t *testing.T) {
	setPasswords(t)
	file := deployDir("overlays", "namespaced", "auth.conf")
	srv := startNATS(t, file)
	ctx := t.Context()
	scope := []string{namespacedNS}

	// The overlay's file is the base's, with the scope's durables.
	base, err := os.ReadFile(deployDir("base", "nats", "auth.conf"))
	require.NoError(t, err)
	overlay, err := os.ReadFile(file)
	require.NoError(t, err)
	// A durable's name is in its consumer's API subjects and acks (ORCA.<durable>)
	// and in its position's key (position.<durable>).
	var scoped []string
	for _, durable := range []string{"orca-dispatcher", "orca-joins", "orca-actions"} {
		name := bus.ScopedConsumerName(durable, scope)
		scoped = append(scoped, "ORCA."+durable, "ORCA."+name, "position."+durable, "position."+name)
	}
	want := strings.NewReplacer(scoped...).Replace(string(base))
	assert.True(t, strings.HasSuffix(string(overlay), want), "overlays/namespaced/auth.conf must be base/nats/auth.conf with %s, %s and %s",
		bus.ScopedConsumerName("orca-dispatcher", scope), bus.ScopedConsumerName("orca-joins", scope), bus.ScopedConsumerName("orca-actions", scope))

	watcher := connect(t, srv, "orca-watcher")
	require.NoError(t, watcher.bus.EnsureStream(ctx, bus.StreamOptions{}))
	require.NoError(t, watcher.bus.PublishTaskEvent(ctx, taskEvent(true, namespacedNS, "task1", "ns-ok")))
	scheduler := connect(t, srv, "orca-scheduler")
	require.NoError(t, scheduler.bus.PublishIgnition(ctx, ignition(namespacedNS, "ignitor1", "ns-ig")))

	dispatcher := connect(t, srv, "orca-dispatcher")
	consumeAll(t, dispatcher, bus.ConsumerOptions{
		Name:     bus.ScopedConsumerName("orca-dispatcher", scope),
		Subjects: bus.ScopedSubjects(scope, bus.SubjectIgnited, bus.SubjectTaskSucceeded, bus.SubjectTaskFailed, bus.SubjectTaskSkipped, bus.SubjectTaskRetrying),
	}, []string{"ns-ig", "ns-ok"}, func(*bus.Delivery) error { return nil })
	require.NoError(t, dispatcher.bus.PublishJoinTimer(ctx, bus.JoinTimer{ID: "ns-timer", Source: "test/deploy", Namespace: namespacedNS, Task: "d", TaskUID: "uid", Run: "run-1"}))
	consumeAll(t, dispatcher, bus.ConsumerOptions{
		Name:     bus.ScopedConsumerName("orca-joins", scope),
		Subjects: bus.ScopedSubjects(scope, bus.SubjectJoinTimer),
	}, []string{"ns-timer"}, func(*bus.Delivery) error { return nil })
	dispatcher.refused(t, "the cluster-wide durable", func(ctx context.Context) error {
		_, err := dispatcher.bus.Consume(ctx, bus.ConsumerOptions{Name: "orca-dispatcher", Subjects: []string{bus.FilterIgnitions}}, func(context.Context, *bus.Delivery) error { return nil })
		return err
	})

	actions := connect(t, srv, "orca-actions")
	consumeAll(t, actions, bus.ConsumerOptions{
		Name:     bus.ScopedConsumerName("orca-actions", scope),
		Subjects: bus.ScopedSubjects(scope, bus.SubjectTaskSucceeded, bus.SubjectTaskFailed),
	}, []string{"ns-ok"}, func(*bus.Delivery) error { return nil })
	for user, durable := range map[string]string{"orca-dispatcher": "orca-dispatcher", "orca-actions": "orca-actions"} {
		positionSaved(t, srv, user, bus.ScopedConsumerName(durable, scope))
	}
	actions.refusedSubjects(t, "$KV.ORCA_STATE.position."+bus.ScopedConsumerName("orca-dispatcher", scope))
	actions.refused(t, "taking the dispatcher's scoped consumer", func(ctx context.Context) error {
		_, err := actions.bus.Consume(ctx, bus.ConsumerOptions{Name: bus.ScopedConsumerName("orca-dispatcher", scope), Subjects: []string{bus.FilterIgnitions}}, func(context.Context, *bus.Delivery) error { return nil })
		return err
	})
}
