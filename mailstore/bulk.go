package mailstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// NewMessage is one message for AppendMany.
type NewMessage struct {
	Content []byte
	Flags   []string
	Date    time.Time // internal date; zero: now
}

// AppendMany stores messages in one mailbox of an account, in order, with
// one transaction and one sync of their content for the lot: the way to
// import a large mailbox (and to build one for the scale benchmark) without
// paying a group commit per message. Every invariant is kept as by Append
// (counters, UID runs, quota, the index queue). It returns the UIDs given;
// either all messages are stored or none is (ErrOverQuota if they do not all
// fit).
func (s *Store) AppendMany(ctx context.Context, accountID int64, mailbox string, msgs []NewMessage) ([]uint32, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	blobs := make([]*incoming, len(msgs))
	flags := make([]string, len(msgs))
	for i, m := range msgs {
		b, err := newBlob(Bytes(m.Content))
		if err != nil {
			return nil, fmt.Errorf("mailstore: append: %w", err)
		}
		blobs[i] = b
		flags[i] = joinFlags(m.Flags)
	}
	uids := make([]uint32, len(msgs))
	fn := func(tx *sql.Tx) error {
		mb, err := targetMailbox(tx, Target{AccountID: accountID, Mailbox: mailbox})
		if err != nil {
			return err
		}
		for i, b := range blobs {
			id, err := s.insertBlob(tx, b, 1)
			if err != nil {
				return err
			}
			if err := charge(tx, accountID, b.size, false); err != nil {
				return err
			}
			date := msgs[i].Date
			if date.IsZero() {
				date = time.Now()
			}
			if uids[i], err = insertMessage(tx, mb, id, flags[i], date, b.size); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.storeContent(ctx, blobs, fn); err != nil {
		return nil, fmt.Errorf("mailstore: append: %w", err)
	}
	return uids, nil
}
