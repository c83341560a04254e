package actions

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultDeniedCIDRs are the destinations webhooks may not reach unless an allowed
// CIDR says otherwise: this host (loopback, unspecified), link-local addresses,
// the cloud metadata address 169.254.169.254 among them, and multicast.
var DefaultDeniedCIDRs = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("ff00::/8"),
}

// LoopbackCIDRs are this host's addresses: an AllowedCIDRs entry for tests and
// for `orca run --sandbox`, whose webhook receivers listen there.
var LoopbackCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// EgressOptions say where webhooks may connect. An address is allowed when it
// lies in an allowed CIDR; otherwise it is refused when it lies in a denied CIDR
// (DefaultDeniedCIDRs, DeniedCIDRs) or is one of Orca's own addresses (OwnHosts);
// anything else is allowed. Denying 0.0.0.0/0 and ::/0 and allowing a few ranges
// makes an allow-list.
type EgressOptions struct {
	// AllowedCIDRs win over every denial.
	AllowedCIDRs []netip.Prefix
	// DeniedCIDRs are refused in addition to DefaultDeniedCIDRs.
	DeniedCIDRs []netip.Prefix
	// OwnHosts are hosts (names or addresses, with or without a port) of Orca's
	// own services, such as the NATS servers and the Kubernetes API server: their
	// addresses are refused. Names are resolved again every minute.
	OwnHosts []string
	// Resolver looks up OwnHosts; default net.DefaultResolver.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// errEgressDenied is the error of a connection that the egress policy refused.
var errEgressDenied = errors.New("the address is not allowed by the webhook egress policy")

// egressPolicy applies EgressOptions to the addresses webhooks connect to.
type egressPolicy struct {
	allow, deny []netip.Prefix
	ownHosts    []string
	resolver    interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}

	mu       sync.Mutex
	own      map[netip.Addr]bool
	resolved time.Time
}

// ownTTL is how long the addresses of OwnHosts are kept before a new lookup.
const ownTTL = time.Minute

func newEgressPolicy(o EgressOptions) *egressPolicy {
	p := &egressPolicy{
		allow:    o.AllowedCIDRs,
		deny:     append(append([]netip.Prefix(nil), DefaultDeniedCIDRs...), o.DeniedCIDRs...),
		resolver: o.Resolver,
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	for _, h := range o.OwnHosts {
		if host := hostOf(h); host != "" {
			p.ownHosts = append(p.ownHosts, host)
		}
	}
	return p
}

// hostOf returns the host of a URL ("nats://orca-nats:4222"), of a host and port,
// or of a bare host.
func hostOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return strings.Trim(s, "[]")
}

// allowed reports whether a webhook may connect to ip.
func (p *egressPolicy) allowed(ip netip.Addr) bool {
	// A zoned address (fe80::1%eth0) would match no prefix: drop the zone.
	ip = ip.Unmap().WithZone("")
	for _, c := range p.allow {
		if c.Contains(ip) {
			return true
		}
	}
	for _, c := range p.deny {
		if c.Contains(ip) {
			return false
		}
	}
	return !p.ownAddrs()[ip]
}

// ownAddrs returns the addresses of Orca's own services, looked up at most once
// a minute; a failed lookup keeps what the last one found.
func (p *egressPolicy) ownAddrs() map[netip.Addr]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.own != nil && time.Since(p.resolved) < ownTTL {
		return p.own
	}
	own := map[netip.Addr]bool{}
	for _, h := range p.ownHosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			own[ip.Unmap()] = true
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ips, err := p.resolver.LookupNetIP(ctx, "ip", h)
		cancel()
		if err != nil {
			for ip := range p.own {
				own[ip] = true
			}
			continue
		}
		for _, ip := range ips {
			own[ip.Unmap()] = true
		}
	}
	p.own, p.resolved = own, time.Now()
	return own
}

// control is the dialer's Control function: it runs after name resolution, for
// the very address about to be connected, so a name that resolves (or rebinds)
// to a refused address is refused too.
func (p *egressPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an address", errEgressDenied, address)
	}
	if !p.allowed(ap.Addr()) {
		return fmt.Errorf("%w: %s", errEgressDenied, ap.Addr())
	}
	return nil
}

// errRedirectRefused says that a webhook answered with a redirect to another
// origin (scheme, host or port), which is not followed: the request carries the
// Action's headers, secrets included.
var errRedirectRefused = errors.New("redirect to another host not followed")

// maxRedirects bounds the redirects followed within one origin.
const maxRedirects = 5

// newWebhookClient returns the HTTP client of the webhooks: no proxy (the policy
// would see the proxy's address instead of the webhook's), every connection
// checked by the egress policy, redirects followed only within the same origin.
func newWebhookClient(p *egressPolicy) *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = dialer.DialContext
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			first := via[0].URL
			if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
}

// ParseCIDRs parses comma-separated CIDRs or addresses (an address is its /32 or
// /128), as the flags take them.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", f)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}
