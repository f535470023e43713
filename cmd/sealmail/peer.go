package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"sealmail/mailstore"
)

var peerCmd = &command{name: "peer", short: "manage peer domains reached directly over verified TLS", sub: []*command{
	{name: "add", short: "add a peer domain and where to reach it", run: peerAdd},
	{name: "update", short: "set how a peer's sealed documents are trusted", run: peerUpdate},
	{name: "list", short: "list peer domains", run: peerList},
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

func peerList(ctx context.Context, args []string) error {
	f := newFlags("peer list", "[--json]")
	asJSON := f.Bool("json", false, "print JSON")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	ps, err := s.Peers(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]peerJSON, len(ps))
		for i, p := range ps {
			out[i] = peerJSON{p.Domain, p.Relay, p.TLSCA != "", p.OrganID, p.OrganName, p.Created}
		}
		return printJSON(out)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "DOMAIN\tRELAY\tTLS CA\tORGAN ID\tORGAN NAME")
	for _, p := range ps {
		relay, ca := p.Relay, "system roots"
		if relay == "" {
			relay = "(MX)"
		}
		if p.TLSCA != "" {
			ca = caSubject(p.TLSCA)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.Domain, relay, ca, p.OrganID, p.OrganName)
	}
	return w.Flush()
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
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	s, err := open(*f.data)
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
