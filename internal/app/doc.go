// Package app assembles one of Orca's services: its flags (with the usual
// Kubernetes-operator spelling and environment fallbacks), the controller-runtime
// manager (cache scope, metrics, health and readiness probes, leader election)
// and the connection to the bus. The services' logic lives in their own packages;
// each cmd/<service>/main.go only parses flags and calls Run.
package app
