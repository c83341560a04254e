package actions

import (
	"flag"
	"strings"
)

// SecretReaderRole is the ClusterRole that lets the actions service read the
// Secrets of a namespace whose owner binds it there (deploy/kustomize/base/rbac):
// the service has no right on Secrets of its own.
const SecretReaderRole = "orca-actions-secret-reader"

// BindFlags registers the actions service's own flags on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.Func("webhook-allowed-cidrs", "comma-separated CIDRs or addresses webhooks may connect to, even where a denied CIDR or Orca's own services lie (e.g. 127.0.0.1/32 for a receiver on this host)", func(s string) error {
		p, err := ParseCIDRs(s)
		o.Egress.AllowedCIDRs = append(o.Egress.AllowedCIDRs, p...)
		return err
	})
	fs.Func("webhook-denied-cidrs", "comma-separated CIDRs or addresses webhooks may not connect to, besides loopback, link-local (169.254.169.254 included), multicast and Orca's own services (e.g. the cluster's Pod and Service CIDRs; 0.0.0.0/0,::/0 with --webhook-allowed-cidrs makes an allow-list)", func(s string) error {
		p, err := ParseCIDRs(s)
		o.Egress.DeniedCIDRs = append(o.Egress.DeniedCIDRs, p...)
		return err
	})
	fs.IntVar(&o.NamespaceConcurrency, "namespace-concurrency", 4, "task events of one namespace whose Actions run at once, per replica; more wait in the stream")
	fs.Func("nats-action-subjects", "comma-separated NATS subject patterns that nats Actions may publish to, {namespace} standing for the Action's namespace (default: any subject but Orca's own)", func(s string) error {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.NATSSubjects = append(o.NATSSubjects, p)
			}
		}
		return nil
	})
}
