package v1alpha1

import (
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A trigger starts a run of a Task; a run is one attempt (one Pod), or more when
// spec.retry tries a failed attempt again. Only a run's final outcome is published
// as succeeded or failed, so startOnSuccess, startOnFailure and the Actions see
// that alone.

// RetryPolicy says when a failed attempt of a run is tried again.
type RetryPolicy struct {
	// Limit is how many counted failures are retried: a run makes at most
	// limit + 1 counted attempts. Disruptions that onDisruption ignores do not
	// count.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Limit int32 `json:"limit"`

	// Backoff is the wait before each retry. Its defaults: 10s, doubling, up to 6m.
	// +optional
	// +kubebuilder:default={}
	Backoff *Backoff `json:"backoff,omitempty"`

	// OnExitCodes retries only the failures whose exit code is (In) or is not
	// (NotIn) in the list. A failure without an exit code (-1: the Pod was deleted
	// or its deadline passed) is retried under NotIn and not under In. Unset:
	// every failure is retried.
	// +optional
	OnExitCodes *ExitCodeRule `json:"onExitCodes,omitempty"`

	// OnDisruption says what a disruption does: an eviction, a preemption, the
	// loss of the node, or any Pod with the condition DisruptionTarget. Ignore (the
	// default) retries it without counting it against limit, Count retries it as a
	// counted failure, Fail ends the run.
	// +optional
	// +kubebuilder:default=Ignore
	OnDisruption DisruptionPolicy `json:"onDisruption,omitempty"`
}

// Backoff is the wait before a retry: Duration before the first, multiplied by
// Factor for each further counted failure, at most MaxDuration. No wait follows the
// last attempt.
//
// +kubebuilder:validation:XValidation:rule="!has(self.duration) || !has(self.maxDuration) || duration(self.maxDuration) >= duration(self.duration)",message="maxDuration must not be below duration"
type Backoff struct {
	// Duration is the wait before the first retry; 0s retries at once.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('24h')",message="at most 24h"
	Duration *metav1.Duration `json:"duration,omitempty"`

	// Factor multiplies the wait after each counted failure.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Factor *int32 `json:"factor,omitempty"`

	// MaxDuration caps the wait.
	// +optional
	// +kubebuilder:default="6m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('24h')",message="at most 24h: the wait is kept in the stream, which keeps a message only for its max age"
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`
}

// Backoff defaults, as the Job controller's.
const (
	DefaultBackoffDuration    = 10 * time.Second
	DefaultBackoffFactor      = 2
	DefaultBackoffMaxDuration = 6 * time.Minute
)

// Wait returns the wait before the retry that follows the failed-th counted
// failure (1 for the first): Duration * Factor^(failed-1), at most MaxDuration,
// and zero when failed is 0 (a disruption retried without counting). A nil
// Backoff has the defaults.
func (b *Backoff) Wait(failed int32) time.Duration {
	if failed <= 0 {
		return 0
	}
	base, factor, limit := DefaultBackoffDuration, int32(DefaultBackoffFactor), DefaultBackoffMaxDuration
	if b != nil {
		if b.Duration != nil {
			base = b.Duration.Duration
		}
		if b.Factor != nil {
			factor = *b.Factor
		}
		if b.MaxDuration != nil {
			limit = b.MaxDuration.Duration
		}
	}
	wait := float64(base) * math.Pow(float64(factor), float64(failed-1))
	if wait >= float64(limit) {
		return limit
	}
	return time.Duration(wait)
}

// ExitCodeRule matches failures by their exit code.
//
// +kubebuilder:validation:XValidation:rule="self.operator != 'In' || !self.values.exists(v, v == 0)",message="values: 0 is a success, never a failure to retry"
type ExitCodeRule struct {
	// Operator is In or NotIn.
	// +required
	Operator ExitCodeOperator `json:"operator"`

	// Values are exit codes, 0 to 255.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:Minimum=0
	// +kubebuilder:validation:items:Maximum=255
	Values []int32 `json:"values"`
}

// Matches reports whether a failure with exit code matches the rule; -1 (none)
// is in no list.
func (r *ExitCodeRule) Matches(code int32) bool {
	in := false
	for _, v := range r.Values {
		if v == code {
			in = true
			break
		}
	}
	return in == (r.Operator == ExitCodeIn)
}

// ExitCodeOperator is In or NotIn.
// +kubebuilder:validation:Enum=In;NotIn
type ExitCodeOperator string

const (
	ExitCodeIn    ExitCodeOperator = "In"
	ExitCodeNotIn ExitCodeOperator = "NotIn"
)

// DisruptionPolicy says what a disruption of an attempt does.
// +kubebuilder:validation:Enum=Ignore;Count;Fail
type DisruptionPolicy string

const (
	// DisruptionIgnore retries a disrupted attempt without counting it.
	DisruptionIgnore DisruptionPolicy = "Ignore"
	// DisruptionCount retries it as a counted failure.
	DisruptionCount DisruptionPolicy = "Count"
	// DisruptionFail ends the run as failed.
	DisruptionFail DisruptionPolicy = "Fail"
)

// DefaultMaxRunSteps is how many Pods a run may start, across all its Tasks and
// attempts, unless the Task or the dispatcher's --max-run-steps says otherwise.
const DefaultMaxRunSteps = 1000

// Annotations and environment of attempts and runs.
const (
	// AnnotationAttempt is the number of the Pod's attempt in its run, from 1.
	AnnotationAttempt = "orca.sirocco.cloud/attempt"
	// AnnotationFailedAttempts counts the run's failures before this attempt that
	// count against spec.retry.limit; absent means 0.
	AnnotationFailedAttempts = "orca.sirocco.cloud/failed-attempts"
	// AnnotationRunStarted is when the run's first attempt was created (RFC 3339).
	AnnotationRunStarted = "orca.sirocco.cloud/run-started"
	// AnnotationDeadline is when the run times out (RFC 3339), from the Task's
	// activeDeadlineSeconds; the watcher ends an attempt still going then.
	AnnotationDeadline = "orca.sirocco.cloud/deadline"

	// EnvAttempt is the number of the attempt, from 1.
	EnvAttempt = "ORCA_ATTEMPT"

	// ReasonDeadlineExceeded is the failure reason of a run that timed out.
	ReasonDeadlineExceeded = "DeadlineExceeded"
)
