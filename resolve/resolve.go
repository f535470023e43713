// Package resolve puts DNS behind an interface, so the relay and the inbound
// checks can be given a system resolver, a chosen server, no DNS at all, or (in
// tests) fixed answers, and so every lookup is bounded in time and cached.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Resolver answers the lookups mail needs. A name without records fails with an
// error for which IsNotFound is true; other errors are temporary.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	// LookupIP returns the A and AAAA addresses of host.
	LookupIP(ctx context.Context, host string) ([]net.IP, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// ErrOff is returned by Off for every lookup the hosts file does not answer.
var ErrOff = errors.New("dns is off")

// IsNotFound reports whether err says the name has no such records (as opposed
// to the lookup failing).
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// NotFound returns the error a Resolver gives for a name without records.
func NotFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// New returns the resolver a "dns" setting names: "system" (resolv.conf),
// "off", or HOST:PORT of a server. Lookups are bounded by timeout and cached.
func New(setting string, timeout time.Duration) (Resolver, error) {
	var r Resolver
	switch setting {
	case "off":
		return Off{}, nil
	case "system", "":
		r = netResolver{net.DefaultResolver}
	default:
		if _, _, err := net.SplitHostPort(setting); err != nil {
			return nil, fmt.Errorf("dns: %q is not system, off or HOST:PORT", setting)
		}
		var d net.Dialer
		r = netResolver{&net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, setting)
			},
		}}
	}
	return NewCache(r, timeout), nil
}

// Off is the resolver of closed networks: no query leaves the machine. MX
// and TXT lookups fail with ErrOff; addresses come from the hosts file only
// (a peer's relay named in /etc/hosts), never from the system's resolver.
type Off struct {
	// Hosts is the hosts file; empty means /etc/hosts.
	Hosts string
}

func (Off) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, ErrOff }
func (Off) LookupTXT(context.Context, string) ([]string, error) { return nil, ErrOff }

func (o Off) LookupIP(_ context.Context, host string) ([]net.IP, error) {
	path := o.Hosts
	if path == "" {
		path = "/etc/hosts"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w, and the hosts file cannot be read: %v", ErrOff, err)
	}
	host = strings.TrimSuffix(host, ".")
	var ips []net.IP
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip := net.ParseIP(f[0])
		if ip == nil {
			continue
		}
		for _, name := range f[1:] {
			if strings.EqualFold(strings.TrimSuffix(name, "."), host) {
				ips = append(ips, ip)
				break
			}
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%w and %s is not in %s", ErrOff, host, path)
	}
	return ips, nil
}

type netResolver struct{ r *net.Resolver }

func (n netResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return n.r.LookupMX(ctx, name)
}

func (n netResolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	return n.r.LookupIP(ctx, "ip", host)
}

func (n netResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return n.r.LookupTXT(ctx, name)
}
