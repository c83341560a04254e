package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StateBucket returns the name of the JetStream key-value bucket where Orca keeps
// what must outlive a consumer: consumer positions and the ledger of actions run.
// Its entries live as long as the stream keeps events (its MaxAge).
func StateBucket(stream string) string { return stream + "_STATE" }

// Keys of the state bucket.
const (
	statePositionPrefix = "position."
	stateLedgerPrefix   = "ledger."
)

// state is the state bucket.
type state = bucket

func (b *Bus) stateSpec() bucketSpec {
	return bucketSpec{
		name:        StateBucket(b.stream),
		description: "Orca's consumer positions and ledger of actions run, kept as long as stream " + b.stream + " keeps events",
	}
}

func (b *Bus) stateKV(ctx context.Context) (jetstream.KeyValue, error) {
	return b.state.open(ctx, b, b.stateSpec())
}

// withState runs fn on the state bucket; when the bucket was deleted, it opens
// (creates) it again and runs fn once more.
func (b *Bus) withState(ctx context.Context, fn func(jetstream.KeyValue) error) error {
	return b.state.do(ctx, b, b.stateSpec(), fn)
}

// ConsumerPosition is how far a durable consumer got: every message of the stream
// up to Sequence was handled. A sequence only means something for the stream it
// was taken from, which StreamCreated identifies.
type ConsumerPosition struct {
	StreamCreated time.Time `json:"streamCreated"`
	Sequence      uint64    `json:"sequence"`
}

func (b *Bus) saveConsumerPosition(ctx context.Context, consumer string, p ConsumerPosition) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return b.withState(ctx, func(kv jetstream.KeyValue) error {
		_, err := kv.Put(ctx, statePositionPrefix+consumer, v)
		return err
	})
}

// loadConsumerPosition returns the saved position of consumer, or nil.
func (b *Bus) loadConsumerPosition(ctx context.Context, consumer string) (*ConsumerPosition, error) {
	var p *ConsumerPosition
	err := b.withState(ctx, func(kv jetstream.KeyValue) error {
		e, err := kv.Get(ctx, statePositionPrefix+consumer)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		p = &ConsumerPosition{}
		return json.Unmarshal(e.Value(), p)
	})
	return p, err
}

// Ledger remembers what was done, for as long as the stream keeps events: the
// actions service records each (action, event) it ran, so that a redelivered or
// replayed event does not run an action twice.
type Ledger struct {
	bus    *Bus
	prefix string
}

// Ledger returns the ledger called name (letters, digits, - and _) in the state
// bucket.
func (b *Bus) Ledger(name string) *Ledger {
	return &Ledger{bus: b, prefix: stateLedgerPrefix + name + "."}
}

// key hashes the parts, which may hold any character, into one key.
func (l *Ledger) key(parts []string) string { return hashedKey(l.prefix, parts) }

// hashedKey returns prefix and a hash of the parts: a key of the state bucket
// for parts that may hold any character.
func hashedKey(prefix string, parts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + hex.EncodeToString(sum[:16])
}

// Done reports whether the entry of parts was recorded.
func (l *Ledger) Done(ctx context.Context, parts ...string) (bool, error) {
	found := false
	err := l.bus.withState(ctx, func(kv jetstream.KeyValue) error {
		_, err := kv.Get(ctx, l.key(parts))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read ledger: %w", err)
	}
	return found, nil
}

// Record records the entry of parts.
func (l *Ledger) Record(ctx context.Context, parts ...string) error {
	err := l.bus.withState(ctx, func(kv jetstream.KeyValue) error {
		_, err := kv.Put(ctx, l.key(parts), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		return err
	})
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}
