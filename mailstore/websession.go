package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebSession is a browser logged in to the web portal (schema/0016_web_sessions.sql).
type WebSession struct {
	// ID is the key the portal derives from the cookie's value (a hash of
	// it): the store never sees the value itself.
	ID string
	// Account is the account as it is now, not as it was at login: a
	// disabled account or a changed role shows at the next request.
	Account Account
	CSRF    string // the token the session's forms carry
	Created time.Time
	Seen    time.Time // the last request, to the minute (TouchWebSession)
	Expires time.Time // the end, whatever the activity
}

// CreateWebSession records a new session for the account at address.
func (s *Store) CreateWebSession(ctx context.Context, address string, ws WebSession) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRow(`SELECT id FROM accounts WHERE address=?`, normAddr(address)).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO web_sessions (id, account_id, csrf, created, seen, expires) VALUES (?, ?, ?, ?, ?, ?)`,
			ws.ID, id, ws.CSRF, ws.Created.Unix(), ws.Seen.Unix(), ws.Expires.Unix())
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("account %s: %w", address, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("mailstore: create web session: %w", err)
	}
	return nil
}

// WebSession returns the session with id and its account, or ErrNotFound.
// Expiry is the caller's to judge (it knows the idle timeout).
func (s *Store) WebSession(ctx context.Context, id string) (WebSession, error) {
	return queryOne(ctx, s, func(sc scanner) (WebSession, error) {
		var ws WebSession
		var role string
		var acreated, created, seen, expires int64
		a := &ws.Account
		err := sc.Scan(&a.ID, &a.Address, &a.Name, &role, &a.Quota, &a.Used, &a.Disabled, &acreated,
			&ws.ID, &ws.CSRF, &created, &seen, &expires)
		a.Role, a.Created = Role(role), time.Unix(acreated, 0)
		ws.Created, ws.Seen, ws.Expires = time.Unix(created, 0), time.Unix(seen, 0), time.Unix(expires, 0)
		return ws, err
	}, "web session", `SELECT a.id, a.address, a.name, a.role, a.quota, a.used, a.disabled, a.created,
		w.id, w.csrf, w.created, w.seen, w.expires
		FROM web_sessions w JOIN accounts a ON a.id = w.account_id WHERE w.id=?`, id)
}

// TouchWebSession records a request of the session at seen.
func (s *Store) TouchWebSession(ctx context.Context, id string, seen time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE web_sessions SET seen=? WHERE id=?`, seen.Unix(), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: touch web session: %w", err)
	}
	return nil
}

// DeleteWebSession ends a session (logout, expiry). An unknown id is no error.
func (s *Store) DeleteWebSession(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM web_sessions WHERE id=?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: delete web session: %w", err)
	}
	return nil
}

// DeleteWebSessions ends the sessions that expired before t or were last
// seen before idle, and returns how many.
func (s *Store) DeleteWebSessions(ctx context.Context, t, idle time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`DELETE FROM web_sessions WHERE expires < ? OR seen < ?`, t.Unix(), idle.Unix())
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mailstore: delete expired web sessions: %w", err)
	}
	return n, nil
}

// endWebSessions ends every web session of the account at address: its
// password changed, so whoever knew the old one is logged out too.
func endWebSessions(tx *sql.Tx, address string) error {
	_, err := tx.Exec(`DELETE FROM web_sessions WHERE account_id = (SELECT id FROM accounts WHERE address=?)`, address)
	return err
}
