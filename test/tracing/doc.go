// Package tracing tests that a run of Orca is one trace: Orca's four services run
// in the test process through app.Run, as `orca run` runs them, against a real
// kube-apiserver and an embedded nats-server, and export their spans over OTLP
// to a receiver in the test.
package tracing
