package bus

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JoinBucket returns the name of the key-value bucket where the dispatcher keeps
// what each run of a join has seen. Its entries live as long as the stream keeps
// events (its MaxAge) after their last write.
func JoinBucket(stream string) string { return stream + "_JOINS" }

// unmarkTTL is how long the marker of an unmarked key stays in the join bucket.
const unmarkTTL = time.Second

// JoinStore is the join bucket: values with compare-and-swap, and marks that
// expire, which can be counted by a key filter.
type JoinStore struct {
	bus    *Bus
	bucket bucket
}

// JoinStore returns the join bucket, created on first use.
func (b *Bus) JoinStore() *JoinStore { return &JoinStore{bus: b} }

// do runs fn on the bucket, made again when it was deleted.
func (s *JoinStore) do(ctx context.Context, fn func(jetstream.KeyValue) error) error {
	return s.bucket.do(ctx, s.bus, bucketSpec{
		name:        JoinBucket(s.bus.stream),
		description: "What each run of Orca's joins has seen, kept as long as stream " + s.bus.stream + " keeps events",
		markerTTL:   unmarkTTL,
	}, fn)
}

// Get returns the value of key and its revision; nil and 0 when it has none.
func (s *JoinStore) Get(ctx context.Context, key string) (value []byte, revision uint64, err error) {
	err = s.do(ctx, func(kv jetstream.KeyValue) error {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		value, revision = e.Value(), e.Revision()
		return nil
	})
	return value, revision, err
}

// Swap stores value under key if the key is still at revision (0: it has no
// value), and reports whether it did: false means someone else wrote it first.
func (s *JoinStore) Swap(ctx context.Context, key string, value []byte, revision uint64) (swapped bool, err error) {
	err = s.do(ctx, func(kv jetstream.KeyValue) error {
		var err error
		if revision == 0 {
			_, err = kv.Create(ctx, key, value)
		} else {
			_, err = kv.Update(ctx, key, value, revision)
		}
		switch {
		case err == nil:
			swapped = true
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			err = nil
		}
		return err
	})
	return swapped, err
}

// Mark sets key, which then goes away by itself after ttl (at least 1s); marking a
// marked key changes nothing.
func (s *JoinStore) Mark(ctx context.Context, key string, ttl time.Duration) error {
	return s.do(ctx, func(kv jetstream.KeyValue) error {
		_, err := kv.Create(ctx, key, nil, jetstream.KeyTTL(max(ttl, time.Second)))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil
		}
		return err
	})
}

// Unmark removes a mark: within a second no trace of it is left.
func (s *JoinStore) Unmark(ctx context.Context, key string) error {
	return s.do(ctx, func(kv jetstream.KeyValue) error {
		return kv.Purge(ctx, key, jetstream.PurgeTTL(unmarkTTL))
	})
}

// Marked returns the keys that match filter (a key with wildcards: * for one
// token, > for the rest) and hold a mark, or a value; a key unmarked within the
// last second may still be among them.
func (s *JoinStore) Marked(ctx context.Context, filter string) ([]string, error) {
	var keys []string
	err := s.do(ctx, func(kv jetstream.KeyValue) error {
		st, err := s.bus.js.Stream(ctx, "KV_"+kv.Bucket())
		if err != nil {
			return err
		}
		prefix := "$KV." + kv.Bucket() + "."
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+filter))
		if err != nil {
			return err
		}
		keys = keys[:0]
		for subject := range info.State.Subjects {
			keys = append(keys, strings.TrimPrefix(subject, prefix))
		}
		return nil
	})
	return keys, err
}
