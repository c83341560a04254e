package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// stateCounterPrefix starts the keys of counters in the state bucket.
const stateCounterPrefix = "counter."

// Counters are named integers in the state bucket that every replica of a service
// changes atomically (compare-and-set on the key's revision). They live as long as
// the stream keeps events (the bucket's TTL counts from the last change). The
// dispatcher counts the Pods of each run with them.
type Counters struct {
	bus    *Bus
	prefix string
}

// Counters returns the counters called name (letters, digits, - and _).
func (b *Bus) Counters(name string) *Counters {
	return &Counters{bus: b, prefix: stateCounterPrefix + name + "."}
}

// key hashes the parts, which may hold any character, into one key.
func (c *Counters) key(parts []string) string { return hashedKey(c.prefix, parts) }

// Update sets the counter of parts to change(its current value), 0 when it was
// never set, and returns the values before and after. When another writer changed
// the counter meanwhile, change is called again with the new value; a change that
// returns the current value writes nothing.
func (c *Counters) Update(ctx context.Context, change func(cur int64) int64, parts ...string) (before, after int64, err error) {
	key := c.key(parts)
	err = c.bus.withState(ctx, func(kv jetstream.KeyValue) error {
		for {
			var rev uint64
			before = 0
			e, err := kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				return err
			default:
				rev = e.Revision()
				if before, err = strconv.ParseInt(string(e.Value()), 10, 64); err != nil {
					return fmt.Errorf("counter %s holds %q: %w", key, e.Value(), err)
				}
			}
			after = change(before)
			if after == before {
				return nil
			}
			v := []byte(strconv.FormatInt(after, 10))
			if rev == 0 {
				_, err = kv.Create(ctx, key, v)
			} else {
				_, err = kv.Update(ctx, key, v, rev)
			}
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // another writer was first: read again
			}
			return err
		}
	})
	if err != nil {
		return 0, 0, fmt.Errorf("update counter: %w", err)
	}
	return before, after, nil
}
