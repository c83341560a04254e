package actions

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeResolver answers name lookups from a map and counts them.
type fakeResolver struct {
	addrs   map[string][]netip.Addr
	lookups int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.lookups++
	if len(r.addrs[host]) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return r.addrs[host], nil
}

func TestEgressPolicyRefusesThisHostLinkLocalAndOrcasOwnServices(t *testing.T) {
	res := &fakeResolver{addrs: map[string][]netip.Addr{"orca-nats": {netip.MustParseAddr("10.96.0.42")}}}
	base := EgressOptions{
		OwnHosts: []string{"nats://orca-nats:4222", "https://10.96.0.1:443", "[fd00::1]:6443"},
		Resolver: res,
	}
	cidrs := func(s string) []netip.Prefix {
		p, err := ParseCIDRs(s)
		require.NoError(t, err)
		return p
	}
	for _, tc := range []struct {
		name    string
		allowed []netip.Prefix
		denied  []netip.Prefix
		ip      string
		want    bool
	}{
		{name: "a public address", ip: "93.184.215.14", want: true},
		{name: "a private address", ip: "10.1.2.3", want: true},
		{name: "loopback", ip: "127.0.0.1", want: false},
		{name: "another loopback address", ip: "127.53.0.1", want: false},
		{name: "IPv6 loopback", ip: "::1", want: false},
		{name: "loopback mapped into IPv6", ip: "::ffff:127.0.0.1", want: false},
		{name: "unspecified (this host)", ip: "0.0.0.0", want: false},
		{name: "cloud metadata", ip: "169.254.169.254", want: false},
		{name: "link-local", ip: "169.254.1.1", want: false},
		{name: "IPv6 link-local", ip: "fe80::1", want: false},
		{name: "IPv6 link-local with a zone", ip: "fe80::1%eth0", want: false},
		{name: "multicast", ip: "239.1.1.1", want: false},
		{name: "the NATS service, by name", ip: "10.96.0.42", want: false},
		{name: "the API server, by address", ip: "10.96.0.1", want: false},
		{name: "an IPv6 API server", ip: "fd00::1", want: false},
		{name: "next to Orca's addresses", ip: "10.96.0.43", want: true},
		{name: "an operator's denied CIDR", denied: cidrs("10.0.0.0/8"), ip: "10.1.2.3", want: false},
		{name: "an allow-list", denied: cidrs("0.0.0.0/0,::/0"), allowed: cidrs("203.0.113.0/24"), ip: "198.51.100.7", want: false},
		{name: "inside the allow-list", denied: cidrs("0.0.0.0/0,::/0"), allowed: cidrs("203.0.113.0/24"), ip: "203.0.113.9", want: true},
		{name: "loopback allowed", allowed: LoopbackCIDRs, ip: "127.0.0.1", want: true},
		{name: "an allowed address of Orca's", allowed: cidrs("10.96.0.42"), ip: "10.96.0.42", want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.AllowedCIDRs, o.DeniedCIDRs = tc.allowed, tc.denied
			p := newEgressPolicy(o)
			assert.Equal(t, tc.want, p.allowed(netip.MustParseAddr(tc.ip)))
			err := p.control("tcp", netip.AddrPortFrom(netip.MustParseAddr(tc.ip), 80).String(), nil)
			if tc.want {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, errEgressDenied)
			}
		})
	}
}

func TestEgressPolicyLooksUpOrcasHostsOncePerMinute(t *testing.T) {
	res := &fakeResolver{addrs: map[string][]netip.Addr{"orca-nats": {netip.MustParseAddr("10.96.0.42")}}}
	p := newEgressPolicy(EgressOptions{OwnHosts: []string{"nats://orca-nats:4222"}, Resolver: res})
	for range 3 {
		assert.False(t, p.allowed(netip.MustParseAddr("10.96.0.42")))
	}
	assert.Equal(t, 1, res.lookups)
	// The service moved: after the minute, the new address is refused and the
	// old one, no longer Orca's, allowed.
	res.addrs["orca-nats"] = []netip.Addr{netip.MustParseAddr("10.96.0.77")}
	p.resolved = p.resolved.Add(-ownTTL)
	assert.False(t, p.allowed(netip.MustParseAddr("10.96.0.77")))
	assert.True(t, p.allowed(netip.MustParseAddr("10.96.0.42")))
	// A lookup that fails keeps what the last one found.
	res.addrs["orca-nats"] = nil
	p.resolved = p.resolved.Add(-ownTTL)
	assert.False(t, p.allowed(netip.MustParseAddr("10.96.0.77")))
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs(" 10.0.0.0/8, 127.0.0.1 ,fd00::/8,::1,,192.168.1.7/16")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}, got)
	_, err = ParseCIDRs("10.0.0.0/8,example.com")
	assert.ErrorContains(t, err, `"example.com" is neither a CIDR nor an IP address`)
}

func TestNATSSubjectPatterns(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		subject  string
		want     bool
	}{
		{nil, "anything.at.all", true},
		{[]string{"orca-notify.{namespace}.>"}, "orca-notify.team-a.builds", true},
		{[]string{"orca-notify.{namespace}.>"}, "orca-notify.team-b.builds", false},
		{[]string{"orca-notify.{namespace}.>"}, "orca-notify.team-a", false},
		{[]string{"alerts.*"}, "alerts.x", true},
		{[]string{"alerts.*"}, "alerts.x.y", false},
		{[]string{"alerts.*", "ops.{namespace}"}, "ops.team-a", true},
	} {
		assert.Equal(t, tc.want, subjectAllowed(tc.patterns, "team-a", tc.subject), "%v %s", tc.patterns, tc.subject)
	}
}
