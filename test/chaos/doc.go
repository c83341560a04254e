// Package chaos holds Orca's chaos suite (`make chaos`): the four services run as
// separate processes built from cmd/, against a real etcd and kube-apiserver and
// a nats-server in a process of its own (natsd), while a kubelet stand-in ends
// their Pods. N ignitions are fired from outside into a 3-Task chain and a fan-out
// of 5 with a webhook Action at the end of the chain, a retried Task, a Task
// with parallelism 2 and one whose Pods are deleted once reported
// (ttlSecondsAfterFinished 0), and an Ignitor ticks every second, while services
// are killed, NATS and the API server restarted, durable consumers deleted and Pod
// creates refused for a while. Once everything is quiet the suite checks, run by
// run, that every Task ran exactly once with its data intact (the retried Task
// its allowed attempts), that no more than 2 Pods of the limited Task ever ran at
// once, that no deleted Pod was made again, that every scheduled time fired once,
// that no Pod keeps Orca's finalizer, that every webhook arrived once, and that
// the only dead letters are the malformed messages it injected; its last line
// gives the figures. In HA mode (-replicas=2 -nats-nodes=3, `make chaos-ha`) two
// processes of each service run against a three-node NATS cluster, and the
// faults include kills of the scheduler's and the watcher's leaders and of one
// NATS server at a time.
//
// The suite is a Go test that skips unless ORCA_CHAOS is set or one of its flags is
// given: `go test ./test/chaos -args -n=200`. Its files: binaries (building natsd
// and the services, and their command lines), processes (supervising them),
// cluster (etcd and a restartable kube-apiserver), admission (the webhook that
// refuses Pod creates), kubelet, workload (Tasks, publisher, webhook receiver),
// retried, cleaned and ticks (a retried Task, a cleaned one, the ticking Ignitor), faults (the seeded plan
// and its execution), ha (leaders and replicas killed) and natscluster (NATS
// servers killed, one at a time in a cluster), quiet (when to check) and checks
// (the assertions and the figures); chaos_test.go puts them together.
package chaos
