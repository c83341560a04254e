// Package v1alpha1 holds Orca's custom resources in the API group sirocco.cloud:
// Task (a Pod template run to completion when one of its triggers fires),
// Ignitor (a trigger fired now, at a time, or on a cron schedule) and Action
// (a plugin run after a Task succeeds or fails).
//
// Validation lives in kubebuilder markers: the API server enforces it at apply
// time through the generated OpenAPI schema and CEL rules, with no webhook.
//
// +kubebuilder:object:generate=true
// +groupName=sirocco.cloud
package v1alpha1
