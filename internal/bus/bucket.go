package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// bucketSpec describes one of Orca's key-value buckets.
type bucketSpec struct {
	name, description string
	// markerTTL, when set, allows keys with a TTL of their own, and keeps the
	// markers of removed keys that long.
	markerTTL time.Duration
}

// bucket opens one of Orca's key-value buckets on first use: it creates it when
// it does not exist, with the stream's MaxAge as TTL, its MaxBytes and replicas.
type bucket struct {
	mu sync.Mutex
	kv jetstream.KeyValue
}

func (k *bucket) open(ctx context.Context, b *Bus, s bucketSpec) (jetstream.KeyValue, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kv != nil {
		return k.kv, nil
	}
	kv, err := b.js.KeyValue(ctx, s.name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		si, serr := b.streamInfo(ctx)
		if serr != nil {
			return nil, serr
		}
		kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         s.name,
			Description:    s.description,
			TTL:            si.Config.MaxAge,
			MaxBytes:       si.Config.MaxBytes,
			Storage:        jetstream.FileStorage,
			Replicas:       si.Config.Replicas,
			LimitMarkerTTL: s.markerTTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = b.js.KeyValue(ctx, s.name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", s.name, err)
	}
	k.kv = kv
	return kv, nil
}

// do runs fn on the bucket; when the bucket was deleted, it opens (creates) it
// again and runs fn once more.
func (k *bucket) do(ctx context.Context, b *Bus, s bucketSpec, fn func(jetstream.KeyValue) error) error {
	for attempt := 0; ; attempt++ {
		kv, err := k.open(ctx, b, s)
		if err != nil {
			return err
		}
		err = fn(kv)
		if attempt == 0 && (errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse)) {
			k.mu.Lock()
			k.kv = nil
			k.mu.Unlock()
			continue
		}
		return err
	}
}
