package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
)

// TestUnansweredSaysWhichStartUpErrorsAreWaitedFor: a JetStream API call that
// timed out, found no responder, or that the server answered with a server-side
// error (a 500: the chaos suite saw "open .../obs/orca-actions/meta.inf.tmp: no
// such file" right after a consumer was deleted, and the actions service exited
// on it 32 times in a run) is tried again; a request the server refuses for what
// it asks is not.
func TestUnansweredSaysWhichStartUpErrorsAreWaitedFor(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{nats.ErrNoResponders, true},
		{fmt.Errorf("create consumer: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008}), true},
		{fmt.Errorf("create consumer: %w", &jetstream.APIError{Code: 500, ErrorCode: 10012, Description: "open meta.inf.tmp: no such file or directory"}), true},
		{fmt.Errorf("create consumer: %w", &jetstream.APIError{Code: 400, ErrorCode: 10013}), false},
		{&jetstream.APIError{Code: 404, ErrorCode: jetstream.JSErrCodeStreamNotFound}, false},
		{errors.New("permissions violation"), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, unanswered(tt.err), "%v", tt.err)
	}
}
