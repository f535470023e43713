package mailstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"
	stdtextproto "net/textproto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"sealmail/mimetree"
)

// Field selects what a text key looks in.
type Field int

const (
	FieldText    Field = iota // every header field and the body
	FieldBody                 // decoded text parts
	FieldSubject              // Subject
	FieldFrom                 // From, as written: display names, comments, addresses
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

// Criteria select messages of a mailbox; a message must meet every condition.
// The zero value selects every message.
type Criteria struct {
	UIDs                  [][]UIDRange // the UID is in each set
	Flags, NotFlags       []string     // has each flag / none of them (keywords compared without ASCII case)
	Since, Before         time.Time    // internal date, compared by calendar day in the server's zone
	SentSince, SentBefore time.Time    // Date: header by its own calendar day (the internal date if none)
	Larger, Smaller       int64        // size bounds; 0: none
	ModSeq                int64        // changed at or after this modseq (RFC 7162 MODSEQ); 0: any
	Text                  []TextKey
	Not                   []Criteria
	Or                    [][2]Criteria
}

// TextKey looks for Query, folded (case and Vietnamese diacritics ignored,
// đ→d), in Field, or, if Header is set, in the values of that header field (an
// empty Query then matches every message that has the field).
//
// Matching is RFC 3501's substring match on the folded text: "da nan" and
// "ang" both find "Đà Nẵng", "ser-fro" finds "user-from@example.test". The
// index answers it: fts_vocab gives the words of the index that contain each
// word of the query, the index the contents holding them, and only when the
// query is more than one word, or has no letters or digits at all ("@"),
// are contents read to find it whole.
type TextKey struct {
	Field  Field
	Header string
	Query  string
}

// Found is what a search found: UIDs, ascending, and the highest modseq
// among them (for RFC 7162's SEARCH MODSEQ answer).
type Found struct {
	UIDs   []uint32
	ModSeq int64
}

// Search returns the messages of a mailbox that meet c.
// Text keys are answered by the full-text index (and, for the few contents
// the indexer has not reached yet, by reading them), intersected with the
// other conditions in one query; no message is read when the index decides.
func (s *Store) Search(ctx context.Context, mailboxID int64, c *Criteria) (Found, error) {
	var out Found
	err := s.read(ctx, func(db *sql.DB) error {
		out = Found{}
		// One snapshot for the unindexed contents and the query, so that a
		// content indexed in between is found by exactly one of them.
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		q := &query{s: s, ctx: ctx, tx: tx, mailboxID: mailboxID, top: true}
		where, err := q.where(c)
		if err != nil {
			return err
		}
		mailbox := "m.mailbox_id"
		if q.driven {
			mailbox = "+m.mailbox_id"
		}
		rows, err := tx.QueryContext(ctx, `SELECT m.uid, m.modseq FROM messages m WHERE `+mailbox+`=? AND `+where+` ORDER BY m.uid`,
			append([]any{mailboxID}, q.args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid uint32
			var modseq int64
			if err := rows.Scan(&uid, &modseq); err != nil {
				return err
			}
			out.UIDs = append(out.UIDs, uid)
			out.ModSeq = max(out.ModSeq, modseq)
		}
		return rows.Err()
	})
	if err != nil {
		return Found{}, fmt.Errorf("mailstore: search: %w", err)
	}
	return out, nil
}

// SearchText returns the UIDs of a mailbox's messages whose field contains
// query, as TextKey says.
func (s *Store) SearchText(ctx context.Context, mailboxID int64, field Field, query string) ([]uint32, error) {
	f, err := s.Search(ctx, mailboxID, &Criteria{Text: []TextKey{{Field: field, Query: query}}})
	return f.UIDs, err
}

// SearchHeader returns the UIDs of messages having a header field name whose
// decoded value contains value, as TextKey says.
func (s *Store) SearchHeader(ctx context.Context, mailboxID int64, name, value string) ([]uint32, error) {
	f, err := s.Search(ctx, mailboxID, &Criteria{Text: []TextKey{{Header: name, Query: value}}})
	return f.UIDs, err
}

// query builds one search's SQL condition; args follow the placeholders in
// the order the condition's text has them.
type query struct {
	s         *Store
	ctx       context.Context
	tx        *sql.Tx
	mailboxID int64
	args      []any
	pending   map[int64]*text // contents not indexed yet, read once per search
	depth     int             // ORs nested so far
	top       bool            // the next where is the top level's
	driven    bool            // the top level's candidates come from the index
}

// maxOrDepth bounds nested ORs, each an SQL expression level (SQLite allows
// 1000 in all); real clients nest a few.
const maxOrDepth = 200

// onlyNot reports whether c is a single NOT and nothing else.
func onlyNot(c *Criteria) bool {
	return len(c.Not) == 1 && len(c.UIDs) == 0 && len(c.Flags) == 0 && len(c.NotFlags) == 0 &&
		c.Since.IsZero() && c.Before.IsZero() && c.SentSince.IsZero() && c.SentBefore.IsZero() &&
		c.Larger == 0 && c.Smaller == 0 && c.ModSeq == 0 && len(c.Text) == 0 && len(c.Or) == 0
}

func (q *query) where(c *Criteria) (string, error) {
	top := q.top
	q.top = false
	var conds []string
	add := func(cond string, args ...any) {
		conds = append(conds, cond)
		q.args = append(q.args, args...)
	}
	for _, k := range c.Text {
		var cond string
		var args []any
		var err error
		if k.Header != "" {
			cond, args, err = q.headerCond(k.Header, k.Query)
		} else {
			cond, args, err = q.textCond(k.Field, k.Query)
		}
		if err != nil {
			return "", err
		}
		add(cond, args...)
		q.driven = q.driven || top && strings.HasPrefix(cond, "m.blob_id IN (")
	}
	// When a text key of the top level gives the candidates, the messages
	// are found through them (index messages_blob), not by walking the
	// mailbox's UIDs: the unary + keeps SQLite from choosing the UID index,
	// which read every row of a 100,000-message mailbox for 40 hits.
	col := "m.uid"
	if top && q.driven {
		col = "+m.uid"
	}
	for _, set := range c.UIDs {
		cond, args := rangesCond(col, set)
		add(cond, args...)
	}
	for _, f := range c.Flags {
		cond, args := flagCond(f, true)
		add(cond, args...)
	}
	for _, f := range c.NotFlags {
		cond, args := flagCond(f, false)
		add(cond, args...)
	}
	// The day of an internal date is the one in its own zone (schema/0014);
	// the server's for those stored without one.
	_, local := time.Now().Zone()
	if !c.Since.IsZero() {
		add(`m.internal_date + COALESCE(m.internal_tz, ?) >= ?`, local, utcDay(c.Since))
	}
	if !c.Before.IsZero() {
		add(`m.internal_date + COALESCE(m.internal_tz, ?) < ?`, local, utcDay(c.Before))
	}
	const sentDay = `COALESCE(sealmail_sent_day((SELECT envelope FROM blobs WHERE id = m.blob_id)), date(m.internal_date + COALESCE(m.internal_tz, ?), 'unixepoch'))`
	if !c.SentSince.IsZero() {
		add(sentDay+` >= ?`, local, c.SentSince.Format(time.DateOnly))
	}
	if !c.SentBefore.IsZero() {
		add(sentDay+` < ?`, local, c.SentBefore.Format(time.DateOnly))
	}
	if c.ModSeq > 0 {
		add(`m.modseq >= ?`, c.ModSeq)
	}
	if c.Larger > 0 {
		add(`m.size > ?`, c.Larger)
	}
	if c.Smaller > 0 {
		add(`m.size < ?`, c.Smaller)
	}
	for i := range c.Not {
		// NOT NOT x is x: clients (and fuzzers) send thousands in a row, and
		// SQLite's expressions nest at most 1000 deep.
		inner, neg := &c.Not[i], true
		for onlyNot(inner) {
			inner, neg = &inner.Not[0], !neg
		}
		// The nested condition's arguments go in as it is built, in place.
		conds = append(conds, "")
		w, err := q.where(inner)
		if err != nil {
			return "", err
		}
		if neg {
			w = "NOT (" + w + ")"
		}
		conds[len(conds)-1] = "(" + w + ")"
	}
	if len(c.Or) > 0 {
		if q.depth++; q.depth > maxOrDepth {
			return "", fmt.Errorf("%w: search criteria nested more than %d deep", ErrInvalid, maxOrDepth)
		}
		defer func() { q.depth-- }()
	}
	for i := range c.Or {
		conds = append(conds, "")
		a, err := q.where(&c.Or[i][0])
		if err != nil {
			return "", err
		}
		b, err := q.where(&c.Or[i][1])
		if err != nil {
			return "", err
		}
		conds[len(conds)-1] = "((" + a + ") OR (" + b + "))"
	}
	if len(conds) == 0 {
		return "1", nil
	}
	return strings.Join(conds, " AND "), nil
}

// utcDay is the start of date's calendar day as a wall clock reading, in
// seconds as if in UTC: an internal date plus its zone offset is compared
// with it.
func utcDay(date time.Time) int64 {
	y, m, d := date.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
}

// flagCond tests for a flag; system flags are stored in their canonical
// spelling, keywords as the client wrote them. Unseen is spelled as the
// partial index messages_unseen is, so SQLite can use it.
func flagCond(f string, has bool) (string, []any) {
	f = CanonicalFlag(f)
	if f == `\Seen` && !has {
		return `instr(' '||m.flags||' ', ' \Seen ') = 0`, nil
	}
	op := " > 0"
	if !has {
		op = " = 0"
	}
	if strings.HasPrefix(f, `\`) {
		return `instr(' '||m.flags||' ', ?)` + op, []any{" " + f + " "}
	}
	return `instr(' '||lower(m.flags)||' ', ?)` + op, []any{" " + asciiLower(f) + " "}
}

// asciiLower lowers ASCII letters only, as SQLite's lower() does.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// rangesCond turns UID runs into a condition on col: a few runs as BETWEENs,
// many as one JSON list of UIDs (an OR per run would hit SQLite's expression
// depth limit).
func rangesCond(col string, set []UIDRange) (string, []any) {
	if len(set) == 0 {
		return "0", nil
	}
	if len(set) <= maxRuns {
		conds := make([]string, len(set))
		args := make([]any, 0, 2*len(set))
		for i, r := range set {
			conds[i] = col + ` BETWEEN ? AND ?`
			args = append(args, min(r.First, r.Last), max(r.First, r.Last))
		}
		return "(" + strings.Join(conds, " OR ") + ")", args
	}
	var uids []uint32
	for _, r := range set {
		for u := min(r.First, r.Last); u <= max(r.First, r.Last) && u != 0; u++ {
			uids = append(uids, u)
		}
	}
	return uidCond(col, uids)
}

// textCond is the condition for a text key on a field.
func (q *query) textCond(field Field, query string) (string, []any, error) {
	folded := Fold(query)
	if strings.TrimSpace(folded) == "" {
		return "1", nil, nil // every text contains the empty string
	}
	words := tokens(folded)
	if len(words) == 0 {
		return q.substringCond(field, folded)
	}
	// The candidates are the contents with the query's longest word, the
	// likeliest to be rare, not with all its words: FTS4 would merge the
	// whole position list of every indexed word containing each of them,
	// and "da" is inside "đã", "đang", "đánh"... in nearly every message
	// (2.5 s for "da nang" in 10,000 messages), or inside so many words
	// that the whole mailbox would be read. The cost follows the longest
	// word's hits, not the mailbox.
	longest := slices.MaxFunc(words, func(a, b string) int { return len(a) - len(b) })
	match, ok, err := q.vocabMatch([]string{longest})
	if err != nil {
		return "", nil, err
	}
	if !ok {
		// The longest word is inside too many words of the index ("e").
		return q.substringCond(field, folded)
	}
	// MATCH on a column searches that column only; on the table, all of them.
	target := "fts"
	if col, ok := fieldCols[field]; ok {
		target = col
	}
	var cond string
	var args []any
	switch {
	case match == "":
		cond = "0" // a word that no indexed text contains
	case len(words) == 1 && words[0] == folded:
		// A lone word is inside one of the text's words: the index decides.
		cond, args = `m.blob_id IN (SELECT docid FROM fts WHERE `+target+` MATCH ?)`, []any{match}
	default:
		// This mailbox's candidates (the index is the whole store's) are
		// read to find the whole query.
		// +m.mailbox_id: the candidates are found through messages_blob;
		// by the mailbox's index SQLite would walk every message of it.
		cond, args, err = q.readHits(`SELECT DISTINCT m.blob_id FROM messages m WHERE +m.mailbox_id = ? AND m.blob_id IN (SELECT docid FROM fts WHERE `+target+` MATCH ?)`,
			[]any{q.mailboxID, match}, func(data []byte) bool {
				return contains(extractText(data), field, folded)
			})
		if err != nil {
			return "", nil, err
		}
	}
	pending, err := q.unindexed()
	if err != nil {
		return "", nil, err
	}
	var hits []int64
	for id, t := range pending {
		if contains(t, field, folded) {
			hits = append(hits, id)
		}
	}
	if len(hits) > 0 {
		b, _ := json.Marshal(hits)
		cond = "(" + cond + ` OR m.blob_id IN (SELECT value FROM json_each(?)))`
		args = append(args, string(b))
	}
	return cond, args, nil
}

// contains reports whether the folded text of field in t holds folded.
func contains(t *text, field Field, folded string) bool {
	return slices.ContainsFunc(t.columns(field), func(col string) bool { return strings.Contains(col, folded) })
}

// maxTerms bounds how many words of the index one word of a query may be
// part of; one inside more ("e", "an") is looked for in the text itself.
const maxTerms = 200

// vocabMatch is the FTS4 query for the contents that hold, for each of words,
// some word containing it: the candidates of a substring search. It is ""
// when a word is in no word of the index; ok is false when one is in more
// than maxTerms of them.
func (q *query) vocabMatch(words []string) (match string, ok bool, err error) {
	var groups []string
	seen := map[string]bool{}
	for _, w := range words {
		if seen[w] {
			continue
		}
		seen[w] = true
		terms, err := q.terms(w)
		if err != nil {
			return "", false, err
		}
		if len(terms) == 0 {
			return "", true, nil
		}
		if len(terms) > maxTerms {
			return "", false, nil
		}
		// OR binds tighter than the implicit AND between the groups.
		groups = append(groups, strings.Join(terms, " OR "))
	}
	return strings.Join(groups, " "), true, nil
}

// terms returns the words of the index that contain w, quoted for MATCH (so
// that words such as "or" and "near" are no operators), at most maxTerms+1.
// They are among the words sharing w's first trigram (fts_grams). A word
// of one or two characters is looked for in the whole vocabulary, where it
// is nearly always inside maxTerms words long before the end; so is a
// number, which numbers (not in fts_grams) may hold.
func (q *query) terms(w string) ([]string, error) {
	find, args := `SELECT term FROM fts_vocab WHERE instr(term, ?) > 0 LIMIT ?`, []any{w, maxTerms + 1}
	if utf8.RuneCountInString(w) >= 3 && !isNumber(w) {
		find, args = `SELECT term FROM fts_grams WHERE gram = ? AND instr(term, ?) > 0 LIMIT ?`, []any{grams(w)[0], w, maxTerms + 1}
	}
	rows, err := q.tx.QueryContext(q.ctx, find, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var terms []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		terms = append(terms, `"`+t+`"`)
	}
	return terms, rows.Err()
}

// substringCond is the condition for a query with no letters or digits
// ("@", "--"), or with a word inside too many words of the index, which the
// index cannot narrow: every content of the mailbox is read. The index keeps no copy of the text (schema/0010);
// such queries are rare enough not to keep one for them.
func (q *query) substringCond(field Field, folded string) (string, []any, error) {
	return q.readHits(`SELECT DISTINCT blob_id FROM messages WHERE mailbox_id = ?`, []any{q.mailboxID}, func(data []byte) bool {
		return contains(extractText(data), field, folded)
	})
}

// readHits is the condition selecting the contents, among those the query
// ids returns, that match says hold what is looked for.
func (q *query) readHits(ids string, args []any, match func(data []byte) bool) (string, []any, error) {
	var hits []int64
	err := q.readContents(ids, args, func(id int64, data []byte) {
		if match(data) {
			hits = append(hits, id)
		}
	})
	if err != nil {
		return "", nil, err
	}
	b, _ := json.Marshal(hits)
	return `m.blob_id IN (SELECT value FROM json_each(?))`, []any{string(b)}, nil
}

// headerCond is the condition for a header field's values. The index finds
// the contents whose header has the field's name and the query's words;
// those candidates are read to check that the query is in that field.
func (q *query) headerCond(name, value string) (string, []any, error) {
	name = stdtextproto.CanonicalMIMEHeaderKey(name)
	folded := Fold(value)
	words := tokens(folded)
	// The header column has every field's name; the value may be in the
	// field's own column (Subject, From, ...), so the words are looked for
	// in the whole row.
	// FTS4 takes a column filter on single words only, not on phrases.
	var match []string
	for _, w := range tokens(Fold(name)) {
		match = append(match, "header:"+w)
	}
	vocab, ok, err := q.vocabMatch(words)
	if err != nil {
		return "", nil, err
	}
	// With candidates from the index, +m.mailbox_id has them looked up by
	// content (messages_blob), not the whole mailbox walked.
	cand := `SELECT DISTINCT m.blob_id FROM messages m WHERE m.mailbox_id = ?`
	args := []any{q.mailboxID}
	switch {
	case ok && vocab == "" && len(words) > 0:
		// No indexed text has the words: only what is not indexed yet may.
		cand = `SELECT DISTINCT m.blob_id FROM unindexed u CROSS JOIN messages m ON m.blob_id = u.blob_id WHERE +m.mailbox_id = ?`
	default:
		if ok && vocab != "" {
			match = append(match, vocab)
		}
		if len(match) > 0 {
			cand = `SELECT DISTINCT m.blob_id FROM messages m WHERE +m.mailbox_id = ?
				AND (m.blob_id IN (SELECT docid FROM fts WHERE fts MATCH ?) OR m.blob_id IN (SELECT blob_id FROM unindexed))`
			args = append(args, strings.Join(match, " "))
		}
	}
	return q.readHits(cand, args, func(data []byte) bool {
		header, _ := mimetree.SplitHeader(data)
		return slices.ContainsFunc(mimetree.Fields(header), func(field mimetree.Field) bool {
			if !strings.EqualFold(field.Name, name) {
				return false
			}
			f := Fold(decodeHeader(field.Value()))
			return strings.TrimSpace(folded) == "" || strings.Contains(f, folded)
		})
	})
}

// unindexed returns the folded text of this mailbox's contents that the
// indexer has not reached yet (normally the last second's mail).
func (q *query) unindexed() (map[int64]*text, error) {
	if q.pending != nil {
		return q.pending, nil
	}
	q.pending = map[int64]*text{}
	// CROSS JOIN keeps unindexed (a second's mail) the outer loop: joined
	// the other way, SQLite walked the whole mailbox, at every text search.
	err := q.readContents(`SELECT DISTINCT m.blob_id FROM unindexed u CROSS JOIN messages m ON m.blob_id = u.blob_id
		WHERE +m.mailbox_id = ?`, []any{q.mailboxID}, func(id int64, data []byte) {
		q.pending[id] = extractText(data)
	})
	return q.pending, err
}

// readContents calls fn with the content of each blob whose id the query
// (one column) returns. Content that cannot be read fails the search: a
// result silently missing a message would be wrong.
func (q *query) readContents(ids string, args []any, fn func(id int64, data []byte)) error {
	type cand struct {
		id int64
		c  ContentRef
	}
	var cands []cand
	rows, err := q.tx.QueryContext(q.ctx, `SELECT b.id, b.hash, b.size, b.loc FROM blobs b WHERE b.id IN (`+ids+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x cand
		var hash []byte
		if err := rows.Scan(&x.id, &hash, &x.c.Size, &x.c.Loc); err != nil {
			return err
		}
		copy(x.c.Sum[:], hash)
		cands = append(cands, x)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, x := range cands {
		data, err := q.s.loadContent(q.ctx, x.c)
		if err != nil {
			return err
		}
		fn(x.id, data)
	}
	return nil
}

// tokens splits folded text into words the way FTS4's simple tokenizer does:
// runs of ASCII letters and digits, and of non-ASCII characters.
func tokens(s string) []string {
	return slices.Collect(tokenSeq(s))
}

// tokenSeq yields the words of tokens(s) without collecting them. It splits
// bytes, not runes: separators are ASCII, and every byte of a non-ASCII
// character (or of invalid UTF-8) is 0x80 or above, so the words are those of
// strings.FieldsFunc with the same rule, without a call per rune or a slice
// of every word (FieldsFunc in the indexer was 14% of the CPU of smtpd's
// BenchmarkIngest at 100 KiB).
func tokenSeq(s string) iter.Seq[string] {
	return func(yield func(string) bool) {
		start := -1
		for i := 0; i < len(s); i++ {
			c := s[i]
			word := c >= 0x80 || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
			switch {
			case word && start < 0:
				start = i
			case !word && start >= 0:
				if !yield(s[start:i]) {
					return
				}
				start = -1
			}
		}
		if start >= 0 {
			yield(s[start:])
		}
	}
}
