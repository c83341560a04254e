package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TaskSpec says what a Task runs and what starts it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.startWhen) || ((!has(self.startOnSuccess) || size(self.startOnSuccess) == 0) && (!has(self.startOnFailure) || size(self.startOnFailure) == 0))",message="startWhen cannot be combined with startOnSuccess or startOnFailure: name those Tasks in the condition"
type TaskSpec struct {
	// Description is free text.
	// +optional
	Description string `json:"description,omitempty"`

	// StartOnIgnition runs the Task when an ignition with one of these names fires in
	// the Task's namespace (an Ignitor's name, or a name an external publisher fires).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	StartOnIgnition []ObjectName `json:"startOnIgnition,omitempty"`

	// StartOnSuccess runs the Task when one of these Tasks succeeds.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	StartOnSuccess []ObjectName `json:"startOnSuccess,omitempty"`

	// StartOnFailure runs the Task when one of these Tasks fails; a Task that names
	// itself is retried.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	StartOnFailure []ObjectName `json:"startOnFailure,omitempty"`

	// SuccessActions are the Actions run after the Task succeeds.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	SuccessActions []ObjectName `json:"successActions,omitempty"`

	// FailureActions are the Actions run after the Task fails.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	FailureActions []ObjectName `json:"failureActions,omitempty"`

	// StartWhen starts the Task when a condition over the results of other Tasks
	// in the same run holds (a join), and skips it in the run when the condition
	// is false.
	// +optional
	StartWhen *StartWhen `json:"startWhen,omitempty"`

	// Template is the Pod run to completion each time the Task starts. Its container
	// names are checked at apply time too (see hack/taskcrd, which also drops the
	// descriptions inside the template to keep the CRD small).
	// +required
	// +kubebuilder:validation:XValidation:rule="has(self.spec) && size(self.spec.containers) > 0",message="template.spec.containers must list at least one container"
	// +kubebuilder:validation:XValidation:rule="!has(self.spec) || !has(self.spec.restartPolicy) || self.spec.restartPolicy == 'Never'",message="template.spec.restartPolicy must be Never: a Task's Pod runs once (with OnFailure the kubelet would restart a failed container in place, so the Pod would never fail and startOnFailure never fire); retry with spec.retry"
	Template corev1.PodTemplateSpec `json:"template"`

	// Retry tries a failed attempt of a run again: see RetryPolicy. Unset: a run
	// is one attempt.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`

	// ActiveDeadlineSeconds bounds a run: its attempts and the waits between them,
	// counted from the first attempt's creation. A run still going then fails with
	// reason DeadlineExceeded. Each attempt's own deadline is the template's
	// activeDeadlineSeconds.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// MaxRunSteps is how many Pods a run (one run id, across all its Tasks and
	// attempts) may have started for this Task to start in it; past it the
	// dispatcher halts the run. Unset: the dispatcher's --max-run-steps (1000).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxRunSteps *int32 `json:"maxRunSteps,omitempty"`

	// Concurrency and history of the Task's runs (task_policy_types.go).
	TaskConcurrency `json:",inline"`
	TaskHistory     `json:",inline"`
}

// TaskState is whether a Task has a Pod running.
// +kubebuilder:validation:Enum=Pending;Running
type TaskState string

const (
	// TaskPending means the Task waits for a trigger.
	TaskPending TaskState = "Pending"
	// TaskRunning means at least one of the Task's Pods is active.
	TaskRunning TaskState = "Running"
)

// TaskStatus is what Orca observed of a Task's runs.
type TaskStatus struct {
	// State is Pending (waiting for a trigger) or Running (at least one Pod active).
	// A new Task reads Pending without a write (the API server defaults it).
	// +optional
	// +kubebuilder:default=Pending
	State TaskState `json:"state,omitempty"`

	// LastSuccess is when a run of the Task last succeeded.
	// +optional
	LastSuccess *metav1.Time `json:"lastSuccess,omitempty"`

	// LastFailure is when a run of the Task last failed.
	// +optional
	LastFailure *metav1.Time `json:"lastFailure,omitempty"`

	// FailuresCount counts the failures since the last success.
	// +optional
	// +kubebuilder:default=0
	FailuresCount int32 `json:"failuresCount"`

	// Active lists the names of the Task's Pods that have not ended.
	// +optional
	// +listType=set
	Active []string `json:"active,omitempty"`

	// History lists the last runs that ended, newest first (at most 10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	History []RunRecord `json:"history,omitempty"`

	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Join shows the runs waiting on the startWhen condition.
	// +optional
	Join *JoinStatus `json:"join,omitempty"`

	// Conditions explain problems starting the Task's Pods.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RunRecord is one run of a Task that ended.
type RunRecord struct {
	// Pod that ran.
	Pod string `json:"pod"`
	// Run id of the chain.
	// +optional
	Run string `json:"run,omitempty"`
	// Succeeded is true when every container exited 0.
	Succeeded bool `json:"succeeded"`
	// ExitCode of the first container that failed; -1 when none reported one.
	// +optional
	ExitCode int32 `json:"exitCode,omitempty"`
	// Reason of a failure (Error, OOMKilled, Evicted, Deleted, ...).
	// +optional
	Reason string `json:"reason,omitempty"`
	// FinishedAt is when the run ended.
	FinishedAt metav1.Time `json:"finishedAt"`
	// Attempt is the number of the Pod's attempt in its run, from 1.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// Retried says that the attempt failed and spec.retry tries the run again.
	// +optional
	Retried bool `json:"retried,omitempty"`
}

// Task is a Pod template run to completion when an ignition fires or another Task
// succeeds or fails.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=orca
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="LastSuccess",type=string,JSONPath=`.status.lastSuccess`
// +kubebuilder:printcolumn:name="LastFailure",type=string,JSONPath=`.status.lastFailure`
// +kubebuilder:printcolumn:name="FailuresCount",type=integer,JSONPath=`.status.failuresCount`
// +kubebuilder:printcolumn:name="Ignitors",type=string,JSONPath=`.spec.startOnIgnition`
// +kubebuilder:printcolumn:name="OnSuccessTask",type=string,JSONPath=`.spec.startOnSuccess`
// +kubebuilder:printcolumn:name="OnFailureTask",type=string,JSONPath=`.spec.startOnFailure`
type Task struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TaskSpec `json:"spec"`

	// Status defaults to {} (and its state to Pending), so that a new Task reads
	// Pending without a write.
	// +kubebuilder:default={}
	Status TaskStatus `json:"status,omitempty"`
}

// TaskList is a list of Tasks.
//
// +kubebuilder:object:root=true
type TaskList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Task `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Task{}, &TaskList{})
}
