package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScheduledNow fires an Ignitor once, when it is created.
const ScheduledNow = "NOW"

// IgnitorSpec says when an ignition fires and what data it carries.
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

	// TimeZone is the IANA time zone of a cron expression, such as Europe/Rome.
	// The default is UTC.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`

	// Data is handed to the started Tasks' Pods as ORCA_DATA, an environment
	// variable: at most 64 KiB (65536 bytes of UTF-8), so that every container can
	// start with it.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="size(bytes(self)) <= 65536",message="data is over the limit of 65536 bytes (64 KiB) of UTF-8: it becomes the environment variable ORCA_DATA, and larger data would keep the containers from starting; pass a reference to the data instead"
	Data string `json:"data,omitempty"`
}

// IgnitorStatus records the firings of an Ignitor.
type IgnitorStatus struct {
	// LastFired is the scheduled time of the last firing. A time is fired at most
	// once: the scheduler fires only times after this one.
	// +optional
	LastFired *metav1.Time `json:"lastFired,omitempty"`

	// NextFire is the next scheduled time, if there is one.
	// +optional
	NextFire *metav1.Time `json:"nextFire,omitempty"`

	// LastEventID is the id of the last ignition event published.
	// +optional
	LastEventID string `json:"lastEventID,omitempty"`

	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: ScheduleValid says whether the scheduled value can be used.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
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
