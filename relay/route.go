package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"sealmail/mailstore"
	"sealmail/resolve"
)

// hop is one server to try: its name (for TLS and logs) and the address to dial.
type hop struct {
	name string
	addr string
}

// route is how to reach a recipient domain: hosts in order of preference and,
// for a peer, the TLS that must be negotiated (nil: opportunistic STARTTLS).
type route struct {
	hops []hop
	tls  *tls.Config
	peer string // the peer domain, for logs
}

// key groups recipients that can share one SMTP transaction.
func (r *route) key() string {
	var b strings.Builder
	b.WriteString(r.peer)
	for _, h := range r.hops {
		b.WriteString("|" + h.name + "@" + h.addr)
	}
	return b.String()
}

// routeError is a routing failure; perm says retrying cannot help.
type routeError struct {
	perm bool
	msg  string
}

func (e *routeError) Error() string { return e.msg }

// maxHops bounds the servers tried for one domain in one attempt.
const maxHops = 10

// route finds how to reach domain: a configured peer first, else DNS MX (then
// the domain's own addresses).
func (q *Queue) route(ctx context.Context, domain string) (*route, error) {
	p, err := q.Store.Peer(ctx, domain)
	switch {
	case err == nil:
		return q.peerRoute(ctx, p)
	case !errors.Is(err, mailstore.ErrNotFound):
		return nil, &routeError{msg: err.Error()}
	}
	hops, err := q.mxHops(ctx, domain)
	if err != nil {
		return nil, err
	}
	return &route{hops: hops}, nil
}

func (q *Queue) peerRoute(ctx context.Context, p mailstore.Peer) (*route, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: q.RootCAs}
	if p.TLSCA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(p.TLSCA)) {
			return nil, &routeError{msg: "peer " + p.Domain + ": tls-ca holds no PEM certificate"}
		}
		cfg.RootCAs = pool
	}
	r := &route{tls: cfg, peer: p.Domain}
	if p.Relay != "" {
		host, _, err := net.SplitHostPort(p.Relay)
		if err != nil {
			return nil, &routeError{perm: true, msg: fmt.Sprintf("peer %s: relay %q is not HOST:PORT", p.Domain, p.Relay)}
		}
		// The name checked in the certificate is the relay host as configured,
		// DNS name or IP address alike.
		if net.ParseIP(host) != nil {
			r.hops = []hop{{name: host, addr: p.Relay}}
			return r, nil
		}
		// A name goes through the configured resolver, never the dialer's:
		// with dns = off that is the hosts file only.
		_, port, _ := net.SplitHostPort(p.Relay)
		ips, err := q.resolver().LookupIP(ctx, host)
		if err != nil {
			return nil, &routeError{msg: fmt.Sprintf("peer %s: relay host %s: %v (give the relay as IP:PORT, or name it in /etc/hosts)", p.Domain, host, err)}
		}
		for _, ip := range ips[:min(len(ips), maxHops)] {
			r.hops = append(r.hops, hop{name: host, addr: net.JoinHostPort(ip.String(), port)})
		}
		return r, nil
	}
	hops, err := q.mxHops(ctx, p.Domain)
	if err != nil {
		return nil, err
	}
	r.hops = hops
	return r, nil
}

// mxHops resolves domain's MX hosts, by preference, to addresses.
func (q *Queue) mxHops(ctx context.Context, domain string) ([]hop, error) {
	mxs, err := q.resolver().LookupMX(ctx, domain)
	var hosts []string
	switch {
	case resolve.IsNotFound(err) || (err == nil && len(mxs) == 0):
		// No MX: the domain itself is the implicit MX (RFC 5321 5.1).
		hosts = []string{domain}
	case errors.Is(err, resolve.ErrOff):
		return nil, &routeError{perm: true, msg: domain + " is not a configured peer and DNS is off"}
	case err != nil:
		return nil, &routeError{msg: fmt.Sprintf("MX lookup for %s: %v", domain, err)}
	default:
		if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
			return nil, &routeError{perm: true, msg: domain + " accepts no mail (null MX)"}
		}
		mxs = slices.Clone(mxs)
		slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
		for _, mx := range mxs {
			hosts = append(hosts, strings.TrimSuffix(mx.Host, "."))
		}
	}
	var hops []hop
	var lastErr error
	notFound := 0
	for _, h := range hosts {
		ips, err := q.resolver().LookupIP(ctx, h)
		if err != nil {
			lastErr = err
			if resolve.IsNotFound(err) {
				notFound++
			}
			continue
		}
		for _, ip := range ips {
			if len(hops) < maxHops {
				hops = append(hops, hop{name: h, addr: net.JoinHostPort(ip.String(), q.port())})
			}
		}
	}
	if len(hops) == 0 {
		if notFound == len(hosts) {
			return nil, &routeError{perm: true, msg: fmt.Sprintf("no mail server found for %s", domain)}
		}
		return nil, &routeError{msg: fmt.Sprintf("address lookup for %s: %v", domain, lastErr)}
	}
	return hops, nil
}

func (q *Queue) resolver() resolve.Resolver {
	if q.Resolver == nil {
		return resolve.Off{}
	}
	return q.Resolver
}

func (q *Queue) port() string {
	if q.Port == "" {
		return "25"
	}
	return q.Port
}
