package smtpd

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// peerAddrs knows the addresses of peer agencies' relays (peer add --relay),
// which may hold more MX connections than an unknown address. Peers are added
// with the CLI while the server runs, so the list is reloaded now and then.
type peerAddrs struct {
	srv *Server

	mu      sync.Mutex
	addrs   map[netip.Addr]bool
	loaded  time.Time
	loading bool
}

const (
	peerRefresh       = time.Minute
	peerLookupTimeout = 10 * time.Second
)

// limit is a throttle.Conns AddressLimit: the peers' cap for their addresses.
func (p *peerAddrs) limit(addr netip.Addr) int {
	p.mu.Lock()
	if !p.loading && time.Since(p.loaded) > peerRefresh {
		// In the background: Accept must not wait for DNS. Until the first
		// load ends, a peer counts as any other address.
		p.loading = true
		go p.load()
	}
	is := p.addrs[addr]
	p.mu.Unlock()
	if !is {
		return 0
	}
	if p.srv.PeerConnsPerIP > 0 {
		return p.srv.PeerConnsPerIP
	}
	return defaultPeerConnsPerIP
}

func (p *peerAddrs) load() {
	ctx, cancel := context.WithTimeout(context.Background(), peerLookupTimeout)
	defer cancel()
	addrs := make(map[netip.Addr]bool)
	peers, perr := p.srv.Store.Peers(ctx)
	if perr != nil {
		p.srv.log.Error("smtp: loading peers for connection limits", "err", perr)
	}
	for _, peer := range peers {
		if peer.Relay == "" {
			continue
		}
		host, _, err := net.SplitHostPort(peer.Relay)
		if err != nil {
			host = peer.Relay
		}
		if a, err := netip.ParseAddr(host); err == nil {
			addrs[a.Unmap()] = true
			continue
		}
		if p.srv.Resolver == nil {
			continue
		}
		ips, err := p.srv.Resolver.LookupIP(ctx, host)
		if err != nil {
			p.srv.log.Debug("smtp: peer relay address unknown; it gets the default connection limit", "peer", peer.Domain, "relay", peer.Relay, "err", err)
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip); ok {
				addrs[a.Unmap()] = true
			}
		}
	}
	p.mu.Lock()
	if perr == nil || p.addrs == nil { // a failed load keeps the last good list
		p.addrs = addrs
	}
	p.loaded, p.loading = time.Now(), false
	p.mu.Unlock()
}
