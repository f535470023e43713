package mailstore

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Field selects what SearchText looks in.
type Field int

const (
	FieldText Field = iota // headers indexed below and body
	FieldBody              // decoded text parts
	FieldSubject
	FieldFrom // From, Sender and Reply-To
	FieldTo
	FieldCc
	FieldBcc
)

var fieldCols = map[Field]string{
	FieldBody:    "body",
	FieldSubject: "subject",
	FieldFrom:    `"from"`,
	FieldTo:      `"to"`,
	FieldCc:      "cc",
	FieldBcc:     "bcc",
}

// SearchText returns the UIDs of a mailbox's messages whose field contains query,
// compared folded (case and Vietnamese diacritics ignored: "da nang" finds
// "Đà Nẵng"). The index finds candidates by word prefixes, then the folded text
// is checked for the exact substring, so a query matches as IMAP's substring
// semantics say whenever it starts at the beginning of a word.
func (s *Store) SearchText(ctx context.Context, mailboxID int64, field Field, query string) ([]uint32, error) {
	q := Fold(query)
	words := tokens(q)
	col, ok := fieldCols[field]
	hay := col
	if !ok {
		hay = `subject||' '||"from"||' '||"to"||' '||cc||' '||bcc||' '||body`
	}
	var sqlq string
	var args []any
	if len(words) == 0 {
		// Nothing indexable (punctuation only): check every message's text.
		sqlq = `SELECT m.uid FROM messages m JOIN fts ON fts.docid = m.blob_id
			WHERE m.mailbox_id=? AND instr(` + hay + `, ?) > 0 ORDER BY m.uid`
		args = []any{mailboxID, q}
	} else {
		match := `"` + strings.Join(words, "* ") + `*"`
		// MATCH on a column searches that column only; on the table, all of them.
		target := "fts"
		if ok {
			target = col
		}
		// One word needs no check of the text: a word that starts with it
		// contains it. Reading the text back is what makes a common word slow.
		check := ""
		args = []any{mailboxID, match}
		if len(words) > 1 {
			check = ` AND instr(` + hay + `, ?) > 0`
			args = append(args, strings.TrimSpace(q))
		}
		sqlq = `SELECT uid FROM messages WHERE mailbox_id=? AND blob_id IN
			(SELECT docid FROM fts WHERE ` + target + ` MATCH ?` + check + `) ORDER BY uid`
	}
	var out []uint32
	err := s.read(ctx, func(db *sql.DB) error {
		out = out[:0]
		rows, err := db.QueryContext(ctx, sqlq, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid uint32
			if err := rows.Scan(&uid); err != nil {
				return err
			}
			out = append(out, uid)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		more, err := searchUnindexed(ctx, db, mailboxID, field, strings.TrimSpace(q))
		out = append(out, more...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: search: %w", err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// searchUnindexed checks the messages whose content the indexer has not reached.
func searchUnindexed(ctx context.Context, db *sql.DB, mailboxID int64, field Field, q string) ([]uint32, error) {
	rows, err := db.QueryContext(ctx, `SELECT m.uid, b.data FROM messages m JOIN unindexed u ON u.blob_id = m.blob_id
		JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id=?`, mailboxID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var uid uint32
		var data []byte
		if err := rows.Scan(&uid, &data); err != nil {
			return nil, err
		}
		if strings.Contains(extractText(data).field(field), q) {
			out = append(out, uid)
		}
	}
	return out, rows.Err()
}

// tokens splits folded text into words the way FTS4's simple tokenizer does:
// runs of ASCII letters and digits, and of non-ASCII characters.
func tokens(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r < 0x80 && !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z')
	})
}

// SearchHeader returns the UIDs of messages having a header field name whose
// decoded value contains value (folded). An empty value matches any message that
// has the field. It reads each message's header, so it is slower than SearchText.
func (s *Store) SearchHeader(ctx context.Context, mailboxID int64, name, value string) ([]uint32, error) {
	want := Fold(value)
	var out []uint32
	err := s.Fetch(ctx, mailboxID, nil, FetchContent, func(it Item) error {
		h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(it.Content)))
		for _, v := range h.Values(name) {
			if strings.Contains(Fold(decodeHeader(v)), want) {
				out = append(out, it.UID)
				break
			}
		}
		return nil
	})
	return out, err
}
