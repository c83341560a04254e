package app

// Leader election (Options.LeaderElect) keeps a Lease named orca-<service> in
// LeaderElectionNamespace, Orca's own namespace, and records the leader's changes
// as Events there. These markers generate the Role for it, in orca-system (the
// kustomizations move it with the services): Leases of any other namespace, such
// as kube-system's leader leases or kube-node-lease's node heartbeats, stay out
// of reach.
//
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete,namespace=orca-system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=orca-system
