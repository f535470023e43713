package mailstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file keeps what the registry (văn thư) needs: the registers of official
// documents sent and received, their acknowledgements, the hash-chained
// evidence of every exchange, and which seal authorities each peer is trusted
// through.

// ErrEvidenceBroken reports that the evidence chain does not verify: a row was
// altered, removed or inserted outside AppendEvidence.
var ErrEvidenceBroken = errors.New("evidence chain broken")

// Direction names a register: documents sent (sổ đi) or received (sổ đến).
type Direction string

const (
	DocOut Direction = "out"
	DocIn  Direction = "in"
)

// Series of a register: each is numbered from 01 every year (Decree 30/2020
// Art. 15.1, 22.2); confidential documents have their own.
const (
	SeriesOrdinary     = ""
	SeriesConfidential = "mat" // văn bản mật
)

// Media of a registered document: paper and electronic documents share
// their series (Art. 15.1: "thống nhất giữa văn bản giấy và văn bản điện tử").
const (
	MediumElectronic = "electronic"
	MediumPaper      = "paper"
)

// DocFile is a file of a document and the SHA-256 of its content.
type DocFile struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// DocAck is one party's acknowledgement of a registered document.
type DocAck struct {
	Party      string    `json:"party"`       // address of the other agency
	StatusCode string    `json:"status_code"` // edXML status: 01 arrived, 02 refused, ...
	Reason     string    `json:"reason,omitempty"`
	Time       time.Time `json:"time"`
}

// DocEntry is one line of an agency's register, with the columns of Decree
// 30/2020 Appendix IV.
type DocEntry struct {
	ID         int64
	Domain     string // the agency whose register this is
	Direction  Direction
	Series     string // SeriesOrdinary or SeriesConfidential
	Medium     string // MediumElectronic (the default) or MediumPaper
	Year       int
	Number     int       // số (out) or số đến (in), from 1 each year
	Notation   string    // số/ký hiệu of the document, e.g. 123/STTTT-VP
	DocumentID string    // edXML DocumentId
	MessageID  string    // of the message that carried it
	DocDate    string    // YYYY-MM-DD in the issuing organ's time zone
	Time       time.Time // sent (out) or received and passed on (in)
	DocType    string    // tên loại: Công văn, Quyết định, ...
	Subject    string    // trích yếu
	Signer     string
	Organ      string   // issuing organ (in)
	Sender     string   // the clerk account that sent it (out), the From: address (in)
	Recipients []string // nơi nhận (out), receiving persons (in)
	FiledWith  string   // the unit or person keeping the filed copy (out)
	Copies     int
	Status     string
	Notes      string
	Files      []DocFile
	// Relation is RelationUpdates or RelationReplaces for a document that
	// corrects the one Related names (its DocumentID); "" for a new one.
	Relation string
	Related  string
	Acks     []DocAck // filled by the read functions
}

// Relations of a document to one released before (Decree 30/2020 Art. 18.3).
const (
	RelationUpdates  = "updates"  // đính chính, cập nhật (edXML BussinessDocType 2)
	RelationReplaces = "replaces" // thay thế (3)
)

// Register adds e to the register of its Domain, Direction and Series for
// e.Year under the next number, which it sets. Numbering is atomic across goroutines
// and processes: the number is taken and the line written in one write
// transaction, and a number once given is never given again.
//
// fill, if not nil, is called inside that transaction with the number to set
// the fields derived from it (Notation, DocumentID); it must not block and
// may run more than once.
//
// A register holds a message once: if it already has a line with e.MessageID,
// Register returns that line and ErrExists, so a resubmitted or redelivered
// message keeps its number.
func (s *Store) Register(ctx context.Context, e DocEntry, fill func(e *DocEntry)) (DocEntry, error) {
	e.Domain = normAddr(e.Domain)
	if e.Medium == "" {
		e.Medium = MediumElectronic
	}
	if e.Domain == "" || (e.Direction != DocOut && e.Direction != DocIn) || e.Year < 1 ||
		(e.Series != SeriesOrdinary && e.Series != SeriesConfidential) || (e.Medium != MediumElectronic && e.Medium != MediumPaper) {
		return DocEntry{}, fmt.Errorf("mailstore: register: %w: domain %q, direction %q, series %q, medium %q, year %d",
			ErrInvalid, e.Domain, e.Direction, e.Series, e.Medium, e.Year)
	}
	var out DocEntry
	err := s.write(ctx, func(tx *sql.Tx) error {
		if e.MessageID != "" {
			old, err := scanDoc(tx.QueryRow(`SELECT `+docCols+` FROM doc_register WHERE domain=? AND direction=? AND message_id=?`,
				e.Domain, e.Direction, e.MessageID))
			if err == nil {
				out = old
				return ErrExists
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		out = e
		if err := tx.QueryRow(`INSERT INTO doc_numbers (domain, direction, series, year, last) VALUES (?,?,?,?,1)
			ON CONFLICT (domain, direction, series, year) DO UPDATE SET last = last + 1 RETURNING last`,
			e.Domain, e.Direction, e.Series, e.Year).Scan(&out.Number); err != nil {
			return err
		}
		if fill != nil {
			fill(&out)
		}
		return insertDoc(tx, &out)
	})
	if errors.Is(err, ErrExists) {
		return out, fmt.Errorf("mailstore: register: message %s is number %d: %w", e.MessageID, out.Number, ErrExists)
	}
	if err != nil {
		return DocEntry{}, fmt.Errorf("mailstore: register: %w", err)
	}
	return out, nil
}

// insertDoc writes a register line whose number is taken, setting its ID.
func insertDoc(tx *sql.Tx, e *DocEntry) error {
	return tx.QueryRow(`INSERT INTO doc_register (domain, direction, series, medium, year, number, notation, document_id,
		message_id, doc_date, registered, doc_type, subject, signer, organ, sender, recipients, filed_with, copies, status,
		notes, files, relation, related) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`,
		e.Domain, e.Direction, e.Series, e.Medium, e.Year, e.Number, e.Notation, e.DocumentID,
		e.MessageID, e.DocDate, e.Time.Unix(), e.DocType, e.Subject, e.Signer, e.Organ, e.Sender, marshalList(e.Recipients),
		e.FiledWith, e.Copies, e.Status, e.Notes, marshalList(e.Files), e.Relation, e.Related).Scan(&e.ID)
}

// UpdateDoc records what became known of a registered document after its
// number was given: its message, files, status and notes.
func (s *Store) UpdateDoc(ctx context.Context, e DocEntry) error {
	files := marshalList(e.Files)
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`UPDATE doc_register SET message_id=?, files=?, status=?, notes=? WHERE id=?`,
			e.MessageID, files, e.Status, e.Notes, e.ID)
		if err != nil {
			return err
		}
		return mustAffect(r, fmt.Sprintf("register entry %d", e.ID))
	})
	if err != nil {
		return fmt.Errorf("mailstore: update register: %w", err)
	}
	return nil
}

// AckDoc records a party's acknowledgement of a registered document,
// replacing that party's earlier one (a refusal can follow an arrival, a
// status 05 a 04) unless the earlier one is later: the column shows each
// party's latest status, whatever order the messages arrived in.
func (s *Store) AckDoc(ctx context.Context, id int64, a DocAck) error {
	err := s.write(ctx, func(tx *sql.Tx) error { return upsertAck(tx, id, a) })
	if err != nil {
		return fmt.Errorf("mailstore: acknowledge register entry %d: %w", id, err)
	}
	return nil
}

func upsertAck(tx *sql.Tx, id int64, a DocAck) error {
	_, err := tx.Exec(`INSERT INTO doc_acks (register_id, party, status_code, reason, time) VALUES (?,?,?,?,?)
		ON CONFLICT (register_id, party) DO UPDATE SET status_code=excluded.status_code, reason=excluded.reason, time=excluded.time
		WHERE excluded.time >= doc_acks.time`,
		id, normAddr(a.Party), a.StatusCode, a.Reason, a.Time.Unix())
	return err
}

// DocQuery selects register lines; zero fields match all.
type DocQuery struct {
	ID         int64
	Domain     string
	Direction  Direction
	Year       int
	DocumentID string
	MessageID  string
}

// Docs returns the register lines q selects, by domain, direction, year and
// number, with their acknowledgements.
func (s *Store) Docs(ctx context.Context, q DocQuery) ([]DocEntry, error) {
	var where []string
	var args []any
	for _, c := range []struct {
		col string
		v   any
		set bool
	}{
		{"id", q.ID, q.ID != 0},
		{"domain", normAddr(q.Domain), q.Domain != ""},
		{"direction", q.Direction, q.Direction != ""},
		{"year", q.Year, q.Year != 0},
		{"document_id", q.DocumentID, q.DocumentID != ""},
		{"message_id", q.MessageID, q.MessageID != ""},
	} {
		if c.set {
			where = append(where, c.col+"=?")
			args = append(args, c.v)
		}
	}
	cond := ""
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, s, scanDoc, `SELECT `+docCols+` FROM doc_register`+cond+` ORDER BY domain, direction, year, series, number`, args...)
	if err != nil {
		return nil, fmt.Errorf("mailstore: register: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// One query for the acknowledgements of all the lines, not one per line:
	// a clerk's page lists a whole year's register.
	type idAck struct {
		id  int64
		ack DocAck
	}
	acks, err := queryAll(ctx, s, func(sc scanner) (idAck, error) {
		var a idAck
		var t int64
		err := sc.Scan(&a.id, &a.ack.Party, &a.ack.StatusCode, &a.ack.Reason, &t)
		a.ack.Time = time.Unix(t, 0)
		return a, err
	}, `SELECT register_id, party, status_code, reason, time FROM doc_acks WHERE register_id IN (SELECT id FROM doc_register`+cond+`)
		ORDER BY register_id, time, party`, args...)
	if err != nil {
		return nil, fmt.Errorf("mailstore: register: %w", err)
	}
	byID := make(map[int64]*DocEntry, len(out))
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	for _, a := range acks {
		// A line registered between the two queries has no entry here; its
		// acknowledgements are read with it next time.
		if e := byID[a.id]; e != nil {
			e.Acks = append(e.Acks, a.ack)
		}
	}
	return out, nil
}

// DocYears returns the years a domain's register of direction has lines in,
// the latest first.
func (s *Store) DocYears(ctx context.Context, domain string, dir Direction) ([]int, error) {
	out, err := queryAll(ctx, s, func(sc scanner) (int, error) {
		var y int
		return y, sc.Scan(&y)
	}, `SELECT DISTINCT year FROM doc_register WHERE domain=? AND direction=? ORDER BY year DESC`, normAddr(domain), dir)
	if err != nil {
		return nil, fmt.Errorf("mailstore: register years: %w", err)
	}
	return out, nil
}

const docCols = `id, domain, direction, series, medium, year, number, notation, document_id, message_id, doc_date,
	registered, doc_type, subject, signer, organ, sender, recipients, filed_with, copies, status, notes, files, relation, related`

func scanDoc(sc scanner) (DocEntry, error) {
	var e DocEntry
	var t int64
	var rcpts, files string
	err := sc.Scan(&e.ID, &e.Domain, &e.Direction, &e.Series, &e.Medium, &e.Year, &e.Number, &e.Notation, &e.DocumentID,
		&e.MessageID, &e.DocDate, &t, &e.DocType, &e.Subject, &e.Signer, &e.Organ, &e.Sender, &rcpts, &e.FiledWith, &e.Copies,
		&e.Status, &e.Notes, &files, &e.Relation, &e.Related)
	if err != nil {
		return DocEntry{}, err
	}
	e.Time = time.Unix(t, 0)
	if err := json.Unmarshal([]byte(rcpts), &e.Recipients); err != nil {
		return DocEntry{}, fmt.Errorf("register entry %d recipients: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(files), &e.Files); err != nil {
		return DocEntry{}, fmt.Errorf("register entry %d files: %w", e.ID, err)
	}
	return e, nil
}

// marshalList encodes a list column; nil is stored as [] so every row decodes.
func marshalList[T any](v []T) string {
	if v == nil {
		v = []T{}
	}
	b, _ := json.Marshal(v) // strings and plain structs: cannot fail
	return string(b)
}

// Evidence origins.
const (
	EvidenceIssued   = "issued"   // attested by this server
	EvidenceReceived = "received" // a peer's receipt
)

// Evidence is one recorded evidence event: a receipt this server issued or
// one it received, with the receipt itself.
type Evidence struct {
	ID         int64     `json:"id"`
	Domain     string    `json:"domain"` // the agency that recorded it
	Time       time.Time `json:"time"`
	Origin     string    `json:"origin"` // EvidenceIssued or EvidenceReceived
	Event      string    `json:"event"`  // SubmissionAcceptance, ContentConsignment, ...
	DocumentID string    `json:"document_id"`
	MessageID  string    `json:"message_id"`
	StatusCode string    `json:"status_code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Receipt    []byte    `json:"-"`    // the signed receipt message, if there is one
	Prev       string    `json:"prev"` // hash of the row before, hex; "" for the first
	Hash       string    `json:"hash"`
}

// canonical is what an evidence row's hash covers besides the previous hash:
// every field in a fixed order, the receipt by its digest.
func (e *Evidence) canonical() []byte {
	receipt := sha256.Sum256(e.Receipt)
	b, _ := json.Marshal([]any{e.ID, e.Domain, e.Time.UnixNano(), e.Origin, e.Event, e.DocumentID, e.MessageID,
		e.StatusCode, e.Reason, e.Sender, e.Recipients, hex.EncodeToString(receipt[:])}) // plain values: cannot fail
	return b
}

func chainHash(prev string, e *Evidence) (string, error) {
	p, err := hex.DecodeString(prev)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(p)
	h.Write(e.canonical())
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AppendEvidence adds e to the evidence chain and returns it with its ID,
// Prev and Hash set.
func (s *Store) AppendEvidence(ctx context.Context, e Evidence) (Evidence, error) {
	var out Evidence
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = appendEvidence(tx, e)
		return err
	})
	if err != nil {
		return Evidence{}, fmt.Errorf("mailstore: append evidence: %w", err)
	}
	return out, nil
}

// appendEvidence is AppendEvidence inside a write transaction.
func appendEvidence(tx *sql.Tx, e Evidence) (Evidence, error) {
	e.Domain = normAddr(e.Domain)
	if e.Recipients == nil {
		e.Recipients = []string{}
	}
	if e.Receipt == nil {
		e.Receipt = []byte{}
	}
	// Nanoseconds survive the round trip through the database; the location
	// does not, and is not part of the content.
	e.Time = time.Unix(0, e.Time.UnixNano())
	out := e
	err := tx.QueryRow(`SELECT id + 1, hash FROM doc_evidence ORDER BY id DESC LIMIT 1`).Scan(&out.ID, &out.Prev)
	if errors.Is(err, sql.ErrNoRows) {
		out.ID, out.Prev = 1, ""
	} else if err != nil {
		return Evidence{}, err
	}
	if out.Hash, err = chainHash(out.Prev, &out); err != nil {
		return Evidence{}, fmt.Errorf("%w: row %d: %v", ErrEvidenceBroken, out.ID-1, err)
	}
	_, err = tx.Exec(`INSERT INTO doc_evidence (id, domain, time, origin, event, document_id, message_id, status_code,
		reason, sender, recipients, receipt, prev, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		out.ID, out.Domain, out.Time.UnixNano(), out.Origin, out.Event, out.DocumentID, out.MessageID, out.StatusCode,
		out.Reason, out.Sender, marshalList(out.Recipients), out.Receipt, out.Prev, out.Hash)
	return out, err
}

const evidenceCols = `id, domain, time, origin, event, document_id, message_id, status_code, reason, sender, recipients, receipt, prev, hash`

func scanEvidence(sc scanner) (Evidence, error) {
	var e Evidence
	var t int64
	var rcpts string
	err := sc.Scan(&e.ID, &e.Domain, &t, &e.Origin, &e.Event, &e.DocumentID, &e.MessageID, &e.StatusCode, &e.Reason,
		&e.Sender, &rcpts, &e.Receipt, &e.Prev, &e.Hash)
	if err != nil {
		return Evidence{}, err
	}
	e.Time = time.Unix(0, t)
	if err := json.Unmarshal([]byte(rcpts), &e.Recipients); err != nil {
		return Evidence{}, fmt.Errorf("evidence %d recipients: %w", e.ID, err)
	}
	return e, nil
}

// EvidenceQuery selects evidence rows; zero fields match all.
type EvidenceQuery struct {
	Domain     string
	DocumentID string
}

// Evidence returns the evidence rows q selects, oldest first.
func (s *Store) Evidence(ctx context.Context, q EvidenceQuery) ([]Evidence, error) {
	query := `SELECT ` + evidenceCols + ` FROM doc_evidence WHERE (?1 = '' OR domain = ?1) AND (?2 = '' OR document_id = ?2) ORDER BY id`
	out, err := queryAll(ctx, s, scanEvidence, query, normAddr(q.Domain), q.DocumentID)
	if err != nil {
		return nil, fmt.Errorf("mailstore: evidence: %w", err)
	}
	return out, nil
}

// VerifyEvidence recomputes the whole evidence chain and returns the number
// of rows and the last hash, which whoever keeps it elsewhere can compare
// later: the chain shows any change before that row, not the loss of the
// rows after it. A broken chain fails with ErrEvidenceBroken naming the
// first bad row.
func (s *Store) VerifyEvidence(ctx context.Context) (rows int, head string, err error) {
	err = s.read(ctx, func(db *sql.DB) error {
		rows, head = 0, ""
		rs, err := db.QueryContext(ctx, `SELECT `+evidenceCols+` FROM doc_evidence ORDER BY id`)
		if err != nil {
			return err
		}
		defer rs.Close()
		var want int64 = 1
		for rs.Next() {
			e, err := scanEvidence(rs)
			if err != nil {
				return fmt.Errorf("%w: row %d: %v", ErrEvidenceBroken, want, err)
			}
			sum, err := chainHash(e.Prev, &e)
			switch {
			case e.ID != want:
				return fmt.Errorf("%w: row %d missing (next is %d)", ErrEvidenceBroken, want, e.ID)
			case e.Prev != head:
				return fmt.Errorf("%w: row %d does not follow row %d", ErrEvidenceBroken, e.ID, e.ID-1)
			case err != nil || sum != e.Hash:
				return fmt.Errorf("%w: row %d was altered", ErrEvidenceBroken, e.ID)
			}
			head = e.Hash
			rows++
			want++
		}
		return rs.Err()
	})
	if err != nil {
		return 0, "", fmt.Errorf("mailstore: verify evidence: %w", err)
	}
	return rows, head, nil
}

// PeerSeal is how documents from a peer domain are trusted.
type PeerSeal struct {
	Domain string
	// CA holds the PEM certificates a peer's seal must chain to.
	CA string
	// CRLFile is the path of a certificate revocation list for the peer's
	// seals, read at each verification so it can be refreshed outside sealmail.
	CRLFile string
	Updated time.Time
}

// SetPeerSeal sets (adding or replacing) the seal trust of a peer domain.
func (s *Store) SetPeerSeal(ctx context.Context, p PeerSeal) error {
	p.Domain = normAddr(p.Domain)
	if p.Domain == "" || strings.ContainsAny(p.Domain, "@ \t") || p.CA == "" {
		return fmt.Errorf("mailstore: set peer seal: %w: domain %q with %d bytes of CA", ErrInvalid, p.Domain, len(p.CA))
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO peer_seal_ca (domain, ca, crl_file, updated) VALUES (?,?,?,?)
			ON CONFLICT (domain) DO UPDATE SET ca=excluded.ca, crl_file=excluded.crl_file, updated=excluded.updated`,
			p.Domain, p.CA, p.CRLFile, now())
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: set peer seal %s: %w", p.Domain, err)
	}
	return nil
}

// PeerSeal returns the seal trust of a peer domain.
func (s *Store) PeerSeal(ctx context.Context, domain string) (PeerSeal, error) {
	var p PeerSeal
	err := s.read(ctx, func(db *sql.DB) error {
		var t int64
		err := db.QueryRowContext(ctx, `SELECT domain, ca, crl_file, updated FROM peer_seal_ca WHERE domain=?`, normAddr(domain)).
			Scan(&p.Domain, &p.CA, &p.CRLFile, &t)
		p.Updated = time.Unix(t, 0)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return PeerSeal{}, fmt.Errorf("mailstore: peer seal %s: %w", domain, ErrNotFound)
	}
	if err != nil {
		return PeerSeal{}, fmt.Errorf("mailstore: peer seal %s: %w", domain, err)
	}
	return p, nil
}

// RemovePeerSeal stops trusting seals for a peer domain. Removing what is
// not there is not an error, so removing a peer can always call it.
func (s *Store) RemovePeerSeal(ctx context.Context, domain string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM peer_seal_ca WHERE domain=?`, normAddr(domain))
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: remove peer seal %s: %w", domain, err)
	}
	return nil
}

// Clerks returns the enabled clerk accounts of a domain, who keep its
// registry and receive a copy of every document it is sent.
func (s *Store) Clerks(ctx context.Context, domain string) ([]Account, error) {
	var out []Account
	err := s.read(ctx, func(db *sql.DB) error {
		out = out[:0]
		rows, err := db.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE domain=? AND role=? AND NOT disabled ORDER BY address`,
			normAddr(domain), RoleClerk)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: clerks of %s: %w", domain, err)
	}
	return out, nil
}
