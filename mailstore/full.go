package mailstore

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

// ErrFull says a write failed because the disk (or the file system's quota)
// holding the store is full. Nothing was written; the same write may succeed
// once space is freed. Protocols answer it as a temporary failure (SMTP 4xx,
// IMAP NO [UNAVAILABLE]), never as a fault of the client or a bug.
var ErrFull = errors.New("storage full")

// fullQuiet is how long no write must have failed for want of space before
// the store says the disk is no longer full. Small writes often fit when large
// ones do not, so one success does not end it: the log would flap.
const fullQuiet = 10 * time.Second

// isFull reports whether err, from SQLite or from a file written beside it,
// means no space was left.
func isFull(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrFull || se.SystemErrno == syscall.ENOSPC || se.SystemErrno == syscall.EDQUOT) {
		return true
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// classify marks an error of a write that failed for want of space as
// ErrFull, and notes that the store is full: the first such failure of an
// episode is logged (once, not per message), and until the episode ends the
// checkpointer gives the WAL's space back (see checkpoint).
func (s *Store) classify(err error) error {
	if err == nil || errors.Is(err, ErrFull) || !isFull(err) {
		return err
	}
	s.lastFull.Store(time.Now().UnixNano())
	if s.full.CompareAndSwap(false, true) {
		s.log.Error("mailstore: disk full: mail and changes are refused (SMTP 451, IMAP NO [UNAVAILABLE]) until space is freed",
			"dir", s.dir(), "err", err)
	}
	return fmt.Errorf("%w: %w", ErrFull, err)
}

// endFull ends an episode of full disk once no write has failed for want of
// space for fullQuiet, and says so in the log. The checkpointer calls it.
func (s *Store) endFull() {
	if !s.full.Load() || time.Since(time.Unix(0, s.lastFull.Load())) < fullQuiet {
		return
	}
	if s.full.CompareAndSwap(true, false) {
		s.log.Info("mailstore: disk space available again: no write has failed for want of space since "+fullQuiet.String(), "dir", s.dir())
	}
}

// Full reports whether the store is in an episode of full disk: a write
// failed for want of space less than fullQuiet ago.
func (s *Store) Full() bool { return s.full.Load() }
