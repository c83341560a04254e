package join

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	orcav1 "github.com/sirocco-cloud/orca/internal/api/v1alpha1"
)

// DefaultTimeout is a join's timeout when its Task sets none.
const DefaultTimeout = 24 * time.Hour

// Action is what a Decision does.
type Action string

// Actions of a Decision.
const (
	// Start creates the Task's Pod for the run.
	Start Action = "start"
	// Skip publishes that the Task was skipped in the run.
	Skip Action = "skip"
	// Fail publishes that the Task failed in the run (a timeout with policy Fail).
	Fail Action = "fail"
)

// Reasons of a Decision.
const (
	ReasonConditionTrue  = "ConditionTrue"
	ReasonConditionFalse = "ConditionFalse"
	ReasonFailed         = "ConditionFailed"
	ReasonTimedOut       = "JoinTimedOut"
)

// Decision is what was decided for a run, once.
type Decision struct {
	Action  Action `json:"action"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// By is the Task whose result decided (for Start: ORCA_INITIATOR), or for a
	// timeout the Task whose result arrived last; empty when none did.
	By string    `json:"by,omitempty"`
	At time.Time `json:"at"`
	// Done is set once the Decision was carried out: nothing acts on it again.
	Done bool `json:"done,omitempty"`
}

// State is what a join has seen of one run.
type State struct {
	Namespace string `json:"namespace"`
	Task      string `json:"task"`
	TaskUID   string `json:"taskUID"`
	Run       string `json:"run"`
	// First is when the first result of the run arrived: the timeout counts from it.
	First time.Time `json:"first"`
	// Results of the Tasks the condition names, by Task name; the first result of
	// each counts.
	Results map[string]Result `json:"results"`
	// Last is the Task whose result arrived last.
	Last     string    `json:"last,omitempty"`
	Decision *Decision `json:"decision,omitempty"`
}

// Waiting reports whether the run still waits on the condition.
func (s *State) Waiting() bool { return s.Decision == nil }

// Timeout returns the timeout of task's join.
func Timeout(task *orcav1.Task) time.Duration {
	if w := task.Spec.StartWhen; w != nil && w.Timeout != nil && w.Timeout.Duration > 0 {
		return w.Timeout.Duration
	}
	return DefaultTimeout
}

// runHash identifies the run of one Task object: the same name applied again is
// another object, with runs of its own.
func runHash(task *orcav1.Task, run string) string {
	sum := sha256.Sum256([]byte(string(task.UID) + "\x00" + run))
	return hex.EncodeToString(sum[:16])
}

// token returns a name as one token of a key: a Task name's dots become '_',
// which no object name has.
func token(name string) string { return strings.ReplaceAll(name, ".", "_") }

// Key returns the store key of the State of task in run.
func Key(task *orcav1.Task, run string) string {
	return "s." + token(task.Namespace) + "." + token(task.Name) + "." + runHash(task, run)
}

// WaitKey returns the key that marks the run of task as waiting since first,
// for the status (see WaitPrefix).
func WaitKey(task *orcav1.Task, run string, first time.Time) string {
	return "w." + token(task.Namespace) + "." + token(task.Name) + "." + strconv.FormatInt(first.Unix(), 10) + "." + runHash(task, run)
}

// WaitPrefix returns the filter of the wait keys of task.
func WaitPrefix(task *orcav1.Task) string {
	return "w." + token(task.Namespace) + "." + token(task.Name) + ".*.*"
}

// ParseWaitKey returns the time a wait key holds and the key of its State.
func ParseWaitKey(key string) (since time.Time, stateKey string, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 5 || parts[0] != "w" {
		return time.Time{}, "", false
	}
	sec, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(sec, 0), "s." + parts[1] + "." + parts[2] + "." + parts[4], true
}

// EventID returns the id of an event about task in run (kind: timer, skip,
// timeout): the same for every attempt, so that the stream drops a republish.
func EventID(kind string, task *orcav1.Task, run string) string {
	return kind + "-" + runHash(task, run)
}
