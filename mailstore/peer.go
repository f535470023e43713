package mailstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Peer is another mail domain reached directly rather than through public DNS:
// typically another agency on the same closed network.
type Peer struct {
	Domain string
	// Relay is the HOST:PORT to deliver to; empty means the domain's MX.
	Relay string
	// TLSCA holds PEM certificates the peer's certificate must chain to; empty
	// means the system roots. TLS is required with a peer either way.
	TLSCA     string
	OrganID   string
	OrganName string
	Created   time.Time
}

const peerCols = `domain, relay, tls_ca, organ_id, organ_name, created`

func scanPeer(sc scanner) (Peer, error) {
	var p Peer
	var created int64
	err := sc.Scan(&p.Domain, &p.Relay, &p.TLSCA, &p.OrganID, &p.OrganName, &created)
	p.Created = time.Unix(created, 0)
	return p, err
}

// AddPeer adds a peer domain.
func (s *Store) AddPeer(ctx context.Context, p Peer) error {
	p.Domain = strings.ToLower(strings.TrimSpace(p.Domain))
	if p.Domain == "" || strings.ContainsAny(p.Domain, "@ ") {
		return fmt.Errorf("mailstore: add peer: %w: domain %q", ErrInvalid, p.Domain)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO peers (`+peerCols+`) VALUES (?,?,?,?,?,?)`, p.Domain, p.Relay, p.TLSCA, p.OrganID, p.OrganName, now())
		if isUnique(err) {
			return ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: add peer %s: %w", p.Domain, err)
	}
	return nil
}

// Peer returns the peer for domain.
func (s *Store) Peer(ctx context.Context, domain string) (Peer, error) {
	return queryOne(ctx, s, scanPeer, "peer "+domain, `SELECT `+peerCols+` FROM peers WHERE domain=?`, strings.ToLower(domain))
}

// Peers lists peers by domain.
func (s *Store) Peers(ctx context.Context) ([]Peer, error) {
	out, err := queryAll(ctx, s, scanPeer, `SELECT `+peerCols+` FROM peers ORDER BY domain`)
	if err != nil {
		return nil, fmt.Errorf("mailstore: peers: %w", err)
	}
	return out, nil
}

// RemovePeer removes a peer domain.
func (s *Store) RemovePeer(ctx context.Context, domain string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`DELETE FROM peers WHERE domain=?`, strings.ToLower(domain))
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailstore: remove peer %s: %w", domain, err)
	}
	return nil
}
