package mailstore

import (
	"database/sql"
	"sync"
	"time"
)

// A password change ends every session the account has open, not only the
// web portal's: whoever logged in with the old password, in a mail client
// that stays connected for days, is out too. SetPassword writes a row of
// the logouts table (schema/0020_logouts.sql) in its transaction; the
// notifier of every process reads new rows as it reads new changes, and
// ends the sessions of that account that logged in before the row.

// logoutWatch is one session waiting to be told its account's password changed.
type logoutWatch struct {
	mark int64 // Account.logoutMark of the session's login
	once sync.Once
	end  func()
}

func (w *logoutWatch) fire() { w.once.Do(func() { go w.end() }) }

// WatchLogout arranges for end to be called, once and on a goroutine of its
// own, when the password of acct is set after acct was returned by
// Authenticate, in this process or another. end closes the session; stop
// (call it when the session ends) cancels the watch.
func (s *Store) WatchLogout(acct Account, end func()) (stop func()) {
	w := &logoutWatch{mark: acct.logoutMark, end: end}
	lw := &s.watch
	lw.mu.Lock()
	if lw.logouts[acct.ID] == nil {
		lw.logouts[acct.ID] = make(map[*logoutWatch]struct{})
	}
	lw.logouts[acct.ID][w] = struct{}{}
	// Rows dispatched since the login were dispatched before this watch
	// existed: look for one of this account among them.
	missed := lw.lastLogout > acct.logoutMark
	lw.mu.Unlock()
	if missed {
		var n int
		err := s.rdb.QueryRow(`SELECT COUNT(*) FROM logouts WHERE account_id=? AND id>?`, acct.ID, acct.logoutMark).Scan(&n)
		if err != nil {
			s.log.Error("mailstore: looking for a password change", "account", acct.Address, "err", err)
		}
		if err != nil || n > 0 {
			w.fire()
		}
	}
	return func() {
		lw.mu.Lock()
		delete(lw.logouts[acct.ID], w)
		if len(lw.logouts[acct.ID]) == 0 {
			delete(lw.logouts, acct.ID)
		}
		lw.mu.Unlock()
	}
}

// addLogout records, in the transaction that sets the password of the
// account at address, that its sessions end.
func addLogout(tx *sql.Tx, address string) error {
	_, err := tx.Exec(`INSERT INTO logouts (account_id, time) SELECT id, ? FROM accounts WHERE address=?`, now(), address)
	return err
}

// dispatchLogouts ends the sessions that logged in before the logouts rows
// written since the last call.
func (s *Store) dispatchLogouts() {
	lw := &s.watch
	lw.mu.Lock()
	last := lw.lastLogout
	lw.mu.Unlock()
	rs, err := s.rdb.Query(`SELECT id, account_id FROM logouts WHERE id > ? ORDER BY id`, last)
	if err != nil {
		return // next tick retries
	}
	type row struct{ id, account int64 }
	var rows []row
	for rs.Next() {
		var r row
		if rs.Scan(&r.id, &r.account) != nil {
			break
		}
		rows = append(rows, r)
	}
	rs.Close()
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for _, r := range rows {
		for w := range lw.logouts[r.account] {
			if w.mark < r.id {
				w.fire()
			}
		}
		lw.lastLogout = r.id
	}
}

// pruneLogouts forgets logouts older than age: every process has long
// dispatched them.
func pruneLogouts(tx *sql.Tx, age time.Duration) error {
	_, err := tx.Exec(`DELETE FROM logouts WHERE time < ?`, time.Now().Add(-age).Unix())
	return err
}
