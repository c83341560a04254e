package v1alpha1

// ConcurrencyPolicy says what a start of a Task does when all of its slots (see
// TaskConcurrency.Parallelism) are taken.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

const (
	// ConcurrencyAllow starts every start: at once when no parallelism is set,
	// else after waiting for a free slot, in arrival order.
	ConcurrencyAllow ConcurrencyPolicy = "Allow"
	// ConcurrencyForbid skips a start that finds every slot taken.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
	// ConcurrencyReplace deletes the oldest running Pod of the Task to free a
	// slot for the start.
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// Bounds of the run-policy fields.
const (
	// MaxParallelism bounds TaskConcurrency.Parallelism.
	MaxParallelism = 1000
	// DefaultSuccessfulRunsHistoryLimit and DefaultFailedRunsHistoryLimit are the
	// history limits of a Task that sets none (those of a CronJob).
	DefaultSuccessfulRunsHistoryLimit = 3
	DefaultFailedRunsHistoryLimit     = 1
)

// TaskConcurrency says how many Pods of a Task run at once, and what a start does
// when that many run.
type TaskConcurrency struct {
	// ConcurrencyPolicy says what a start does when the Task runs as many Pods as
	// parallelism allows: Allow (the default) waits for a slot, Forbid skips the
	// start (an Event, a metric and the event orca.task.forbidden), Replace
	// deletes the Task's oldest running Pod (reported as failed, reason
	// Replaced) and starts.
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// Parallelism caps how many Pods of the Task run at once. Unset, Allow runs
	// every start at once, and Forbid and Replace allow one Pod. Starts beyond
	// it wait in the bus, in the order their events were stored, and start as
	// Pods of the Task end.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Parallelism *int32 `json:"parallelism,omitempty"`
}

// TaskHistory says how long the Pods of a Task's ended runs are kept.
type TaskHistory struct {
	// TTLSecondsAfterFinished deletes a Pod that many seconds after it ended
	// (once its completion event is stored). Unset, only the history limits
	// delete Pods.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// SuccessfulRunsHistoryLimit is how many Pods of succeeded runs are kept,
	// the newest; default 3.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`

	// FailedRunsHistoryLimit is how many Pods of failed runs are kept, the
	// newest; default 1.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`
}

// Policy returns the concurrency policy, Allow when unset.
func (c *TaskConcurrency) Policy() ConcurrencyPolicy {
	if c.ConcurrencyPolicy == "" {
		return ConcurrencyAllow
	}
	return c.ConcurrencyPolicy
}

// Slots returns how many Pods of the Task may run at once; 0 means no limit.
func (c *TaskConcurrency) Slots() int {
	switch {
	case c.Parallelism != nil:
		return int(*c.Parallelism)
	case c.Policy() == ConcurrencyAllow:
		return 0
	default:
		return 1
	}
}

// Limited reports whether the Task's starts go through admission: a policy other
// than Allow, or a parallelism.
func (c *TaskConcurrency) Limited() bool { return c.Slots() > 0 }

// SuccessfulLimit returns SuccessfulRunsHistoryLimit or its default.
func (h *TaskHistory) SuccessfulLimit() int {
	if h.SuccessfulRunsHistoryLimit == nil {
		return DefaultSuccessfulRunsHistoryLimit
	}
	return int(*h.SuccessfulRunsHistoryLimit)
}

// FailedLimit returns FailedRunsHistoryLimit or its default.
func (h *TaskHistory) FailedLimit() int {
	if h.FailedRunsHistoryLimit == nil {
		return DefaultFailedRunsHistoryLimit
	}
	return int(*h.FailedRunsHistoryLimit)
}
