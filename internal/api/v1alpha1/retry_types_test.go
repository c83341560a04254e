package v1alpha1

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestBackoffWait(t *testing.T) {
	custom := &Backoff{Duration: &metav1.Duration{Duration: time.Second}, Factor: ptr.To[int32](3), MaxDuration: &metav1.Duration{Duration: 20 * time.Second}}
	zero := &Backoff{Duration: &metav1.Duration{}}
	tests := []struct {
		b      *Backoff
		failed int32
		want   time.Duration
	}{
		{nil, 0, 0},
		{nil, 1, 10 * time.Second},
		{nil, 2, 20 * time.Second},
		{nil, 6, 320 * time.Second},
		{nil, 7, 6 * time.Minute},
		{nil, 1000, 6 * time.Minute},
		{custom, 1, time.Second},
		{custom, 3, 9 * time.Second},
		{custom, 4, 20 * time.Second},
		{zero, 5, 0},
		{&Backoff{}, 1, 10 * time.Second},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.b.Wait(tt.failed), "%+v after %d failures", tt.b, tt.failed)
	}
}

func TestExitCodeRuleMatches(t *testing.T) {
	in := &ExitCodeRule{Operator: ExitCodeIn, Values: []int32{1, 137}}
	notIn := &ExitCodeRule{Operator: ExitCodeNotIn, Values: []int32{2}}
	assert.True(t, in.Matches(1))
	assert.True(t, in.Matches(137))
	assert.False(t, in.Matches(2))
	assert.False(t, in.Matches(-1), "no exit code is in no list")
	assert.True(t, notIn.Matches(1))
	assert.False(t, notIn.Matches(2))
	assert.True(t, notIn.Matches(-1))
}
