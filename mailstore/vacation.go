package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Vacation is an account's out-of-office reply (schema/0018_vacation.sql).
// The package vacation sends it; the store keeps it and whom it answered.
type Vacation struct {
	Subject, Body string
	// From and Until bound when replies go out: from From up to, not
	// including, Until. A zero time is an open end.
	From, Until time.Time
}

// Limits on a vacation's text: a subject is one header line, a body a short
// notice (the reply is built in memory for every message it answers).
const (
	MaxVacationSubject = 200      // characters
	MaxVacationBody    = 16 << 10 // bytes
)

// Active reports whether replies go out at t.
func (v *Vacation) Active(t time.Time) bool {
	return (v.From.IsZero() || !t.Before(v.From)) && (v.Until.IsZero() || t.Before(v.Until))
}

func (v *Vacation) check() error {
	switch {
	case !utf8.ValidString(v.Subject) || !utf8.ValidString(v.Body):
		return fmt.Errorf("%w: the out-of-office subject and text must be UTF-8", ErrInvalid)
	case utf8.RuneCountInString(v.Subject) > MaxVacationSubject:
		return fmt.Errorf("%w: the out-of-office subject is longer than %d characters", ErrInvalid, MaxVacationSubject)
	case len(v.Body) > MaxVacationBody:
		return fmt.Errorf("%w: the out-of-office text is longer than %d bytes", ErrInvalid, MaxVacationBody)
	case strings.IndexFunc(v.Subject, unicode.IsControl) >= 0:
		// A line break would let the subject add header fields to the reply.
		return fmt.Errorf("%w: the out-of-office subject must be one line without control characters", ErrInvalid)
	case strings.IndexFunc(v.Body, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0:
		return fmt.Errorf("%w: the out-of-office text has control characters", ErrInvalid)
	case !v.From.IsZero() && !v.Until.IsZero() && !v.Until.After(v.From):
		return fmt.Errorf("%w: the out-of-office end (%s) is not after its start (%s)", ErrInvalid,
			v.Until.Format(time.RFC3339), v.From.Format(time.RFC3339))
	}
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(u int64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(u, 0)
}

// SetVacation sets the out-of-office reply of the account addr; nil turns it
// off, keeping it for SavedVacation. A reply whose subject or text changed,
// or that was off, goes again to senders already answered.
func (s *Store) SetVacation(ctx context.Context, addr string, v *Vacation) error {
	if v != nil {
		if err := v.check(); err != nil {
			return err
		}
	}
	addr = normAddr(addr)
	return s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRow(`SELECT id FROM accounts WHERE address=?`, addr).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("account %s: %w", addr, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if v == nil {
			if _, err := tx.Exec(`UPDATE vacations SET off=1, updated=? WHERE account_id=?`, now(), id); err != nil {
				return err
			}
			_, err = tx.Exec(`DELETE FROM vacation_replies WHERE account_id=?`, id)
			return err
		}
		var subject, body string
		var off bool
		err = tx.QueryRow(`SELECT subject, body, off FROM vacations WHERE account_id=?`, id).Scan(&subject, &body, &off)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err != nil || off || subject != v.Subject || body != v.Body {
			if _, err := tx.Exec(`DELETE FROM vacation_replies WHERE account_id=?`, id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(`INSERT INTO vacations (account_id, subject, body, from_time, until_time, updated, off) VALUES (?,?,?,?,?,?,0)
			ON CONFLICT (account_id) DO UPDATE SET subject=excluded.subject, body=excluded.body,
			from_time=excluded.from_time, until_time=excluded.until_time, updated=excluded.updated, off=0`,
			id, v.Subject, v.Body, unixOrZero(v.From), unixOrZero(v.Until), now())
		return err
	})
}

// Vacation returns the out-of-office reply of the account addr, nil when it is
// off (whatever its dates say: see Vacation.Active).
func (s *Store) Vacation(ctx context.Context, addr string) (*Vacation, error) {
	v, on, err := s.SavedVacation(ctx, addr)
	if !on {
		v = nil
	}
	return v, err
}

// SavedVacation returns the out-of-office reply of the account addr, on or
// off (nil if none was ever set), for the account's owner to edit.
func (s *Store) SavedVacation(ctx context.Context, addr string) (v *Vacation, on bool, err error) {
	addr = normAddr(addr)
	err = s.read(ctx, func(db *sql.DB) error {
		var id int64
		err := db.QueryRowContext(ctx, `SELECT id FROM accounts WHERE address=?`, addr).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("account %s: %w", addr, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var from, until int64
		var got Vacation
		var off bool
		err = db.QueryRowContext(ctx, `SELECT subject, body, from_time, until_time, off FROM vacations WHERE account_id=?`, id).
			Scan(&got.Subject, &got.Body, &from, &until, &off)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			v, on = nil, false
			return nil
		case err != nil:
			return err
		}
		got.From, got.Until = timeOrZero(from), timeOrZero(until)
		v, on = &got, !off
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, fmt.Errorf("mailstore: vacation of %s: %w", addr, err)
	}
	return v, on, err
}

// ClaimVacationReply records that the account addr answers sender at t,
// unless it answered sender less than every before t: then it returns false.
// The record is made first so that two messages arriving together get one
// reply; a reply that then fails to be queued gives its claim back with
// ReleaseVacationReply.
func (s *Store) ClaimVacationReply(ctx context.Context, addr, sender string, t time.Time, every time.Duration) (bool, error) {
	addr, sender = normAddr(addr), normAddr(sender)
	claimed := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		claimed = false
		var id int64
		err := tx.QueryRow(`SELECT id FROM accounts WHERE address=?`, addr).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("account %s: %w", addr, ErrNotFound)
		}
		if err != nil {
			return err
		}
		// Records past the period decide nothing any more.
		if _, err := tx.Exec(`DELETE FROM vacation_replies WHERE account_id=? AND sent<=?`, id, t.Add(-every).Unix()); err != nil {
			return err
		}
		r, err := tx.Exec(`INSERT OR IGNORE INTO vacation_replies (account_id, sender, sent) VALUES (?,?,?)`, id, sender, t.Unix())
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		claimed = n == 1
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("mailstore: vacation reply of %s: %w", addr, err)
	}
	return claimed, err
}

// ReleaseVacationReply undoes ClaimVacationReply(addr, sender, t), for a reply
// that could not be sent.
func (s *Store) ReleaseVacationReply(ctx context.Context, addr, sender string, t time.Time) error {
	addr, sender = normAddr(addr), normAddr(sender)
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM vacation_replies WHERE sender=? AND sent=? AND account_id=(SELECT id FROM accounts WHERE address=?)`,
			sender, t.Unix(), addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: vacation reply of %s: %w", addr, err)
	}
	return nil
}
