package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"sealmail/mailstore"
)

var peerCmd = &command{name: "peer", short: "manage peer domains reached directly over verified TLS", sub: []*command{
	{name: "add", short: "add a peer domain and where to reach it", run: peerAdd},
	{name: "update", short: "set how a peer's sealed documents are trusted", run: peerUpdate},
	{name: "list", short: "list peer domains", run: peerList.run},
	{name: "remove", short: "remove a peer domain", run: peerRemove},
}}

func peerAdd(ctx context.Context, args []string) error {
	f := newFlags("peer add", "DOMAIN [--relay HOST:PORT] [--tls-ca FILE.pem] [--organ-id ID] [--organ-name NAME]")
	relay := f.String("relay", "", "deliver to `HOST:PORT` (default: the domain's MX)")
	caFile := f.String("tls-ca", "", "PEM `FILE` of the certificate (or CA) the peer's must chain to (default: system roots)")
	id := f.String("organ-id", "", "the peer agency's organ `ID`")
	organ := f.String("organ-name", "", "the peer agency's official `NAME`")
	setSeal := sealTrustFlags(f)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *relay != "" {
		if _, port, err := net.SplitHostPort(*relay); err != nil || port == "" {
			return f.errorf("--relay %q is not HOST:PORT", *relay)
		}
	}
	var ca string
	if *caFile != "" {
		b, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--tls-ca: %w", err)
		}
		// Stored as contents, so the data directory is self-contained.
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("--tls-ca: %s holds no PEM certificate", *caFile)
		}
		ca = string(b)
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	p := mailstore.Peer{Domain: pos[0], Relay: *relay, TLSCA: ca, OrganID: *id, OrganName: *organ}
	if err := s.AddPeer(ctx, p); err != nil {
		if errors.Is(err, mailstore.ErrExists) {
			return fmt.Errorf("peer %s exists; remove it first ('sealmail peer remove %s')", pos[0], pos[0])
		}
		return err
	}
	if err := setSeal(ctx, s, pos[0]); err != nil {
		return fmt.Errorf("added peer %s, but its seal trust failed: %w; fix it with 'sealmail peer update %s'", pos[0], err, pos[0])
	}
	fmt.Printf("added peer %s\n", pos[0])
	return nil
}

// peerJSON is a peer in 'peer list --json'; scripts rely on its keys.
type peerJSON struct {
	Domain    string    `json:"domain"`
	Relay     string    `json:"relay"`
	TLSCA     bool      `json:"tls_ca"` // whether a CA is pinned
	OrganID   string    `json:"organ_id"`
	OrganName string    `json:"organ_name"`
	Created   time.Time `json:"created"`
}

var peerList = listCommand[mailstore.Peer, peerJSON]{
	name:     "peer list",
	jsonHelp: "print JSON",
	fetch:    (*mailstore.Store).Peers,
	toJSON: func(p mailstore.Peer) peerJSON {
		return peerJSON{p.Domain, p.Relay, p.TLSCA != "", p.OrganID, p.OrganName, p.Created}
	},
	header: "DOMAIN\tRELAY\tTLS CA\tORGAN ID\tORGAN NAME",
	row: func(p mailstore.Peer) string {
		relay, ca := p.Relay, "system roots"
		if relay == "" {
			relay = "(MX)"
		}
		if p.TLSCA != "" {
			ca = caSubject(p.TLSCA)
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", p.Domain, relay, ca, p.OrganID, p.OrganName)
	},
}

// caSubject names the first certificate of a PEM bundle.
func caSubject(pemData string) string {
	blk, _ := pem.Decode([]byte(pemData))
	if blk == nil {
		return "pinned"
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "pinned"
	}
	return "pinned: " + c.Subject.CommonName
}

func peerRemove(ctx context.Context, args []string) error {
	f := newFlags("peer remove", "DOMAIN")
	pos, s, err := f.parseOpen(args, 1, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RemovePeerSeal(ctx, pos[0]); err != nil {
		return err
	}
	if err := s.RemovePeer(ctx, pos[0]); err != nil {
		if errors.Is(err, mailstore.ErrNotFound) {
			return fmt.Errorf("%s is not a peer; see 'sealmail peer list'", pos[0])
		}
		return err
	}
	fmt.Printf("removed peer %s\n", pos[0])
	return nil
}
