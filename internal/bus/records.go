package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// stateRecordsPrefix starts the keys of Records in the state bucket.
const stateRecordsPrefix = "records."

// Records are values in the state bucket under one name, kept as long as the
// stream keeps events. Several replicas may change one at once: Update is a
// compare-and-set. The dispatcher keeps each limited Task's slots and waiting
// starts there.
type Records struct {
	bus    *Bus
	prefix string
}

// Records returns the records called name (letters, digits, - and _).
func (b *Bus) Records(name string) *Records {
	return &Records{bus: b, prefix: stateRecordsPrefix + name + "."}
}

// Get returns the value of key, or nil when it has none. A key is made of
// letters, digits and - _ = / ., and neither starts nor ends with a dot.
func (r *Records) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := r.get(ctx, key)
	return v, err
}

func (r *Records) get(ctx context.Context, key string) (value []byte, revision uint64, err error) {
	err = r.bus.withState(ctx, func(kv jetstream.KeyValue) error {
		e, err := kv.Get(ctx, r.prefix+key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			value, revision = nil, 0
			return nil
		}
		if err != nil {
			return err
		}
		value, revision = e.Value(), e.Revision()
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read record %s%s: %w", r.prefix, key, err)
	}
	return value, revision, nil
}

// Put sets the value of key.
func (r *Records) Put(ctx context.Context, key string, value []byte) error {
	err := r.bus.withState(ctx, func(kv jetstream.KeyValue) error {
		_, err := kv.Put(ctx, r.prefix+key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("write record %s%s: %w", r.prefix, key, err)
	}
	return nil
}

// Delete removes key; a key that has no value is no error.
func (r *Records) Delete(ctx context.Context, key string) error {
	err := r.bus.withState(ctx, func(kv jetstream.KeyValue) error {
		return kv.Delete(ctx, r.prefix+key)
	})
	if err != nil {
		return fmt.Errorf("delete record %s%s: %w", r.prefix, key, err)
	}
	return nil
}

// Update changes the value of key to what fn returns for the current value (nil
// when it has none); nil from fn deletes it, and returning the value unchanged
// writes nothing. When another writer changed the value between the read and the
// write, fn runs again on the new value, so it must have no effect but its
// result. An error of fn ends Update with that error.
func (r *Records) Update(ctx context.Context, key string, fn func(current []byte) ([]byte, error)) error {
	for {
		cur, rev, err := r.get(ctx, key)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if string(next) == string(cur) && (next == nil) == (cur == nil) {
			return nil
		}
		err = r.bus.withState(ctx, func(kv jetstream.KeyValue) error {
			switch {
			case next == nil:
				return kv.Delete(ctx, r.prefix+key, jetstream.LastRevision(rev))
			case rev == 0:
				_, err := kv.Create(ctx, r.prefix+key, next)
				return err
			default:
				_, err := kv.Update(ctx, r.prefix+key, next, rev)
				return err
			}
		})
		if conflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update record %s%s: %w", r.prefix, key, err)
		}
		return nil
	}
}

// conflict reports whether err says that a key changed since it was read.
func conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// RemovedPods is the ledger of the Pods that Orca deleted after their run
// (history limits, ttlSecondsAfterFinished), by Task uid and Pod name: the
// watcher records a Pod before it deletes it, and the dispatcher does not create
// a recorded Pod again when its trigger comes back (a redelivery, a replay).
// A check and a create are not one step: see RemovedPodsWindow.
func (b *Bus) RemovedPods() *Ledger { return b.Ledger("pods") }

// RemovedPodsWindow bounds the time from the dispatcher's check of RemovedPods
// to its create of the Pod: it gives up a create not done by then, and checks
// again when the trigger comes back. The watcher deletes a Pod only longer than
// that after it recorded it, so that a create that checked just before the
// record meets the Pod (AlreadyExists) instead of making it again.
const RemovedPodsWindow = 30 * time.Second
