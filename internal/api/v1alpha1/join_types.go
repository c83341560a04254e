package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StartWhen starts a Task when a condition over the results of other Tasks in the
// same run holds: a join. Give exactly one of condition, allSucceeded,
// anySucceeded and allDone.
//
// +kubebuilder:validation:XValidation:rule="[has(self.condition), has(self.allSucceeded), has(self.anySucceeded), has(self.allDone)].filter(x, x).size() == 1",message="startWhen needs exactly one of condition, allSucceeded, anySucceeded and allDone"
type StartWhen struct {
	// Condition is a CEL expression over the results of other Tasks in the run,
	// e.g. "a.succeeded && (b.succeeded || b.failed)". Each Task it names is a
	// variable with the fields succeeded, failed, skipped, done (any of the three),
	// message, exitCode and reason; a Task whose name has '-' is written with '_'
	// (load_data for load-data), and any name can be written tasks["load.v2"].
	// The Task starts as soon as the condition is true, and is skipped in the run
	// as soon as it is false, whatever the Tasks not reported yet may do.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Condition string `json:"condition,omitempty"`

	// AllSucceeded starts the Task when every one of these Tasks succeeded in the
	// run (skipped as soon as one failed or was skipped).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	AllSucceeded []ObjectName `json:"allSucceeded,omitempty"`

	// AnySucceeded starts the Task when one of these Tasks succeeded in the run
	// (skipped once none can).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	AnySucceeded []ObjectName `json:"anySucceeded,omitempty"`

	// AllDone starts the Task when every one of these Tasks ended in the run,
	// whether it succeeded, failed or was skipped.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	AllDone []ObjectName `json:"allDone,omitempty"`

	// Timeout bounds the wait of a run, counted from the first result of a Task
	// the condition names; default 24h, at most 144h (the stream must keep events
	// longer than that: --stream-max-age, 7 days by default).
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('144h')",message="timeout must be between 1s and 144h"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// OnTimeout says what a run that is still undecided at its timeout does:
	// Skip (default: the Task is skipped in the run), Fail (the Task counts as
	// failed in the run: startOnFailure and failureActions follow) or Start (the
	// Task starts with the results known so far).
	// +optional
	OnTimeout TimeoutPolicy `json:"onTimeout,omitempty"`
}

// TimeoutPolicy is what a join does with a run still undecided at its timeout.
// +kubebuilder:validation:Enum=Skip;Fail;Start
type TimeoutPolicy string

// Timeout policies.
const (
	TimeoutSkip  TimeoutPolicy = "Skip"
	TimeoutFail  TimeoutPolicy = "Fail"
	TimeoutStart TimeoutPolicy = "Start"
)

// JoinStatus shows the runs that wait on a Task's startWhen condition: some of
// the Tasks it names reported, and it is neither true nor false yet.
type JoinStatus struct {
	// Waiting counts the runs waiting on the condition.
	Waiting int32 `json:"waiting"`
	// OldestRun is the run that has waited longest.
	// +optional
	OldestRun string `json:"oldestRun,omitempty"`
	// OldestSince is when the first result of OldestRun arrived.
	// +optional
	OldestSince *metav1.Time `json:"oldestSince,omitempty"`
}
