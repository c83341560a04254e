package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScheduledNow fires an Ignitor once, when it is created.
const ScheduledNow = "NOW"

// CatchUpPolicy says which scheduled times that were missed (the scheduler was
// down, or the Ignitor suspended) still fire.
//
// +kubebuilder:validation:Enum=None;Latest;All
type CatchUpPolicy string

const (
	// CatchUpNone fires no missed time: a time fires only while it is due.
	CatchUpNone CatchUpPolicy = "None"
	// CatchUpLatest fires the most recent missed time and skips the earlier ones.
	CatchUpLatest CatchUpPolicy = "Latest"
	// CatchUpAll fires every missed time, oldest first, up to maxCatchUpRuns of the
	// most recent ones.
	CatchUpAll CatchUpPolicy = "All"
)

// IgnitorSpec says when an ignition fires and what data it carries.
//
// +kubebuilder:validation:XValidation:rule="self.catchUp == 'All' || self.maxCatchUpRuns == 1",message="maxCatchUpRuns counts the missed times that catchUp: All fires; with catchUp None or Latest leave it at 1"
// +kubebuilder:validation:XValidation:rule="self.catchUp != 'All' || self.maxCatchUpRuns > 1",message="catchUp: All needs maxCatchUpRuns above 1 (with 1 it would fire only the latest missed time, which is catchUp: Latest)"
type IgnitorSpec struct {
	// Description is free text.
	// +optional
	Description string `json:"description,omitempty"`

	// Scheduled is NOW (fire once, when created), an RFC 3339 time (fire once, then)
	// or a cron expression: 5 fields, or a descriptor such as @hourly or @every 10m
	// (fire at each time).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self == 'NOW' || self.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$') || self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$') || self.matches('^@every [0-9][0-9a-zµ.]*$') || self.matches('^[0-9A-Za-z*/,?-]+( +[0-9A-Za-z*/,?-]+){4}$')",messageExpression="'\"' + self + '\" is not a schedule: use NOW, an RFC 3339 time such as 2030-02-03T19:34:05Z, or a cron expression such as \"5 * * * *\" or \"@hourly\"'"
	Scheduled string `json:"scheduled"`

	// Schedules are further schedules of the same Ignitor, each written as
	// scheduled is. The Ignitor fires at every time of any of them; a time that
	// two schedules share fires once.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10
	Schedules []Schedule `json:"schedules,omitempty"`

	// TimeZone is the IANA time zone of the cron expressions, such as Europe/Rome.
	// The default is UTC.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$') && self != 'Local'",messageExpression="'\"' + self + '\" is not an IANA time zone name such as Europe/Rome or UTC'"
	TimeZone string `json:"timeZone,omitempty"`

	// Data is handed to the started Tasks' Pods as ORCA_DATA, an environment
	// variable: at most 64 KiB (65536 bytes of UTF-8), so that every container can
	// start with it.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="size(bytes(self)) <= 65536",message="data is over the limit of 65536 bytes (64 KiB) of UTF-8: it becomes the environment variable ORCA_DATA, and larger data would keep the containers from starting; pass a reference to the data instead"
	Data string `json:"data,omitempty"`

	// Suspend stops the firing while true. The times missed meanwhile follow
	// catchUp when it is set back to false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// StartingDeadlineSeconds skips a scheduled time that could not fire within
	// this many seconds after it (a Warning Event says so). Unset: no deadline.
	// +optional
	// +kubebuilder:validation:Minimum=1
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// CatchUp says which missed times fire when the scheduler comes back or the
	// Ignitor is resumed: None, Latest (the default) or All (up to
	// maxCatchUpRuns). Skipped times are counted in status.lastSkip and a Warning
	// Event.
	// +optional
	// +kubebuilder:default=Latest
	CatchUp CatchUpPolicy `json:"catchUp,omitempty"`

	// MaxCatchUpRuns caps how many missed times catchUp: All fires (the most
	// recent ones); the default 1 is catchUp: Latest's.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxCatchUpRuns int32 `json:"maxCatchUpRuns,omitempty"`
}

// Schedule is one schedule in spec.schedules: NOW, an RFC 3339 time or a cron
// expression, as spec.scheduled.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:XValidation:rule="self == 'NOW' || self.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$') || self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$') || self.matches('^@every [0-9][0-9a-zµ.]*$') || self.matches('^[0-9A-Za-z*/,?-]+( +[0-9A-Za-z*/,?-]+){4}$')",messageExpression="'\"' + self + '\" is not a schedule: use NOW, an RFC 3339 time such as 2030-02-03T19:34:05Z, or a cron expression such as \"5 * * * *\" or \"@hourly\"'"
type Schedule string

// MaxFiringHistory bounds status.history.
const MaxFiringHistory = 10

// IgnitorStatus records the firings of an Ignitor.
type IgnitorStatus struct {
	// LastFired is the scheduled time of the last firing. A time is fired at most
	// once: the scheduler fires only times after this one and after lastSkip.last.
	// +optional
	LastFired *metav1.Time `json:"lastFired,omitempty"`

	// NextFire is the next scheduled time, if there is one and the Ignitor is not
	// suspended.
	// +optional
	NextFire *metav1.Time `json:"nextFire,omitempty"`

	// LastEventID is the id of the last ignition event published.
	// +optional
	LastEventID string `json:"lastEventID,omitempty"`

	// History lists the last firings, newest first (at most 10).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	History []IgnitorFiring `json:"history,omitempty"`

	// LastSkip describes the last scheduled times that were skipped instead of
	// fired: missed beyond the catch-up rule, or past startingDeadlineSeconds.
	// +optional
	LastSkip *IgnitorSkip `json:"lastSkip,omitempty"`

	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: ScheduleValid says whether the schedules can be used, Suspended
	// whether spec.suspend holds the firing.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IgnitorFiring is one firing of an Ignitor.
type IgnitorFiring struct {
	// ID is the ignition event's id, "<ignitor uid>-<scheduled unix seconds>".
	ID string `json:"id"`
	// ScheduledTime is the scheduled time that fired.
	ScheduledTime metav1.Time `json:"scheduledTime"`
	// FiredAt is when the scheduler published it.
	FiredAt metav1.Time `json:"firedAt"`
}

// IgnitorSkip is a run of consecutive scheduled times that were not fired.
type IgnitorSkip struct {
	// Count is how many scheduled times were skipped (at least this many when the
	// message says "more than").
	Count int64 `json:"count"`
	// First and Last are the first and the last skipped scheduled times.
	First metav1.Time `json:"first"`
	Last  metav1.Time `json:"last"`
	// At is when the scheduler decided to skip them.
	At metav1.Time `json:"at"`
	// Message says why.
	Message string `json:"message"`
}

// Ignitor fires an ignition now, at a time, or on a cron schedule.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=orca
// +kubebuilder:printcolumn:name="Scheduled",type=string,JSONPath=`.spec.scheduled`
// +kubebuilder:printcolumn:name="LastFired",type=string,JSONPath=`.status.lastFired`
// +kubebuilder:printcolumn:name="NextFire",type=string,JSONPath=`.status.nextFire`
type Ignitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   IgnitorSpec   `json:"spec"`
	Status IgnitorStatus `json:"status,omitempty"`
}

// IgnitorList is a list of Ignitors.
//
// +kubebuilder:object:root=true
type IgnitorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Ignitor `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Ignitor{}, &IgnitorList{})
}
