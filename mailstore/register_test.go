package mailstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// openDir opens the store in dir; two opens of one dir act as two processes.
func openDir(t *testing.T, dir string) *mailstore.Store {
	t.Helper()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRegisterNumbers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDir(t, dir)
	// A second store on the same file is another process: numbers must not
	// collide across processes either.
	s2 := openDir(t, dir)
	const n = 40
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st := []*mailstore.Store{s, s2}[i%2]
			e, err := st.Register(ctx, mailstore.DocEntry{Domain: "a.test", Direction: mailstore.DocOut, Year: 2026,
				MessageID: fmt.Sprintf("<%d@a.test>", i)}, func(e *mailstore.DocEntry) {
				e.Notation = fmt.Sprintf("%02d/A-VP", e.Number)
			})
			if err != nil {
				t.Error(err)
				return
			}
			if e.Notation != fmt.Sprintf("%02d/A-VP", e.Number) {
				t.Errorf("fill not applied: %+v", e)
			}
			mu.Lock()
			got = append(got, e.Number)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("numbers %v: want 1..%d each once", got, n)
		}
	}
	// Each register and year counts on its own.
	for _, c := range []struct {
		dir    mailstore.Direction
		domain string
		year   int
		want   int
	}{
		{mailstore.DocIn, "a.test", 2026, 1},
		{mailstore.DocOut, "b.test", 2026, 1},
		{mailstore.DocOut, "a.test", 2027, 1},
		{mailstore.DocOut, "a.test", 2026, n + 1},
	} {
		e, err := s.Register(ctx, mailstore.DocEntry{Domain: c.domain, Direction: c.dir, Year: c.year}, nil)
		if err != nil || e.Number != c.want {
			t.Errorf("%s %s %d: number %d, %v; want %d", c.domain, c.dir, c.year, e.Number, err, c.want)
		}
	}
	// The same message is registered once.
	e, err := s.Register(ctx, mailstore.DocEntry{Domain: "a.test", Direction: mailstore.DocOut, Year: 2026, MessageID: "<3@a.test>"}, nil)
	if !errors.Is(err, mailstore.ErrExists) || e.MessageID != "<3@a.test>" || e.Number < 1 || e.Number > n {
		t.Errorf("re-register: %+v, %v", e, err)
	}
	if _, err := s.Register(ctx, mailstore.DocEntry{Domain: "a.test", Direction: "sideways", Year: 2026}, nil); !errors.Is(err, mailstore.ErrInvalid) {
		t.Errorf("bad direction: %v", err)
	}
}

func TestRegisterEntries(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	at := time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)
	e, err := s.Register(ctx, mailstore.DocEntry{Domain: "A.test", Direction: mailstore.DocOut, Year: 2026, DocDate: "2026-11-28",
		Time: at, Subject: "Về việc", Signer: "Giám đốc Nguyễn Văn An", Sender: "clerk@a.test",
		Recipients: []string{"vanthu@b.test", "vanthu@c.test"}, Copies: 2, Status: "numbered"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.MessageID, e.Status, e.Files = "<m@a.test>", "sent", []mailstore.DocFile{{Name: "cv.pdf", SHA256: "ab"}}
	if err := s.UpdateDoc(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateDoc(ctx, mailstore.DocEntry{ID: 999}); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("update of a missing entry: %v", err)
	}
	if err := s.AckDoc(ctx, e.ID, mailstore.DocAck{Party: "vanthu@b.test", StatusCode: "01", Time: at}); err != nil {
		t.Fatal(err)
	}
	// A later acknowledgement from the same party replaces the first.
	if err := s.AckDoc(ctx, e.ID, mailstore.DocAck{Party: "VANTHU@b.test", StatusCode: "02", Reason: "hash-mismatch", Time: at.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AckDoc(ctx, e.ID, mailstore.DocAck{Party: "vanthu@c.test", StatusCode: "01", Time: at.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Docs(ctx, mailstore.DocQuery{Domain: "a.test", Direction: mailstore.DocOut, Year: 2026})
	if err != nil || len(got) != 1 {
		t.Fatalf("docs: %+v, %v", got, err)
	}
	g := got[0]
	if g.Domain != "a.test" || g.MessageID != "<m@a.test>" || g.Status != "sent" || !g.Time.Equal(at) ||
		!slices.Equal(g.Recipients, e.Recipients) || len(g.Files) != 1 || g.Files[0].Name != "cv.pdf" {
		t.Errorf("entry read back: %+v", g)
	}
	if len(g.Acks) != 2 || g.Acks[0].Party != "vanthu@b.test" || g.Acks[0].StatusCode != "02" || g.Acks[1].StatusCode != "01" {
		t.Errorf("acks: %+v", g.Acks)
	}
	for _, q := range []mailstore.DocQuery{{Direction: mailstore.DocIn}, {Year: 2025}, {Domain: "b.test"}, {MessageID: "<x@a.test>"}} {
		if got, err := s.Docs(ctx, q); err != nil || len(got) != 0 {
			t.Errorf("query %+v: %d entries, %v", q, len(got), err)
		}
	}
}

// evidenceChain opens a store in a fresh directory holding three rows of
// evidence and returns it with the last row.
func evidenceChain(t *testing.T) (*mailstore.Store, mailstore.Evidence) {
	t.Helper()
	s := openTest(t)
	at := time.Date(2026, 11, 28, 9, 30, 0, 123456789, time.FixedZone("ICT", 7*3600))
	var last mailstore.Evidence
	for i, ev := range []string{"SubmissionAcceptance", "ContentConsignment", "ContentConsignmentFailure"} {
		e, err := s.AppendEvidence(context.Background(), mailstore.Evidence{Domain: "a.test", Time: at.Add(time.Duration(i) * time.Second),
			Origin: mailstore.EvidenceIssued, Event: ev, DocumentID: "000.00.12.H10,2026/11/28,01/A-VP",
			MessageID: "<m@a.test>", Sender: "vanthu@a.test", Recipients: []string{"vanthu@b.test"}, Receipt: []byte("receipt " + ev)})
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != int64(i+1) || e.Prev != last.Hash || len(e.Hash) != 64 {
			t.Errorf("row %d: %+v after %s", i, e, last.Hash)
		}
		last = e
	}
	return s, last
}

// rawDB opens the store's file as someone with shell access would.
func rawDB(t *testing.T, s *mailstore.Store) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+s.Path()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestEvidenceChain(t *testing.T) {
	ctx := context.Background()
	s, last := evidenceChain(t)
	rows, head, err := s.VerifyEvidence(ctx)
	if err != nil || rows != 3 || head != last.Hash {
		t.Fatalf("intact chain: %d rows, head %s, %v", rows, head, err)
	}
	if got, err := s.Evidence(ctx, mailstore.EvidenceQuery{Domain: "b.test"}); err != nil || len(got) != 0 {
		t.Errorf("evidence of another domain: %+v, %v", got, err)
	}
	got, err := s.Evidence(ctx, mailstore.EvidenceQuery{DocumentID: "000.00.12.H10,2026/11/28,01/A-VP"})
	if err != nil || len(got) != 3 || string(got[1].Receipt) != "receipt ContentConsignment" ||
		got[0].Time.UnixNano() != time.Date(2026, 11, 28, 2, 30, 0, 123456789, time.UTC).UnixNano() {
		t.Fatalf("evidence for the document: %+v, %v", got, err)
	}
	// The store itself refuses to change evidence.
	db := rawDB(t, s)
	if _, err := db.Exec(`UPDATE doc_evidence SET reason='x' WHERE id=2`); err == nil {
		t.Error("evidence row updated despite the append-only trigger")
	}
	if _, err := db.Exec(`DELETE FROM doc_evidence WHERE id=2`); err == nil {
		t.Error("evidence row deleted despite the append-only trigger")
	}
}

// TestEvidenceTamper edits the database as someone with the file could, after
// dropping the append-only triggers: the chain shows it.
func TestEvidenceTamper(t *testing.T) {
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"status", `UPDATE doc_evidence SET status_code='02' WHERE id=2`, "row 2 was altered"},
		{"time", `UPDATE doc_evidence SET time=time+1 WHERE id=1`, "row 1 was altered"},
		{"receipt", `UPDATE doc_evidence SET receipt=X'00' WHERE id=2`, "row 2 was altered"},
		{"rehashed", `UPDATE doc_evidence SET reason='forged', hash='HEAD' WHERE id=2`, "row 2 was altered"},
		{"removed", `DELETE FROM doc_evidence WHERE id=2`, "row 2 missing"},
		{"renumbered", `UPDATE doc_evidence SET id=4 WHERE id=3`, "row 3 missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, last := evidenceChain(t)
			db := rawDB(t, s)
			for _, q := range []string{`DROP TRIGGER doc_evidence_no_update`, `DROP TRIGGER doc_evidence_no_delete`, strings.ReplaceAll(tc.sql, "HEAD", last.Hash)} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := s.VerifyEvidence(context.Background())
			if !errors.Is(err, mailstore.ErrEvidenceBroken) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("after tampering: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPeerSealAndClerks(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if _, err := s.PeerSeal(ctx, "b.test"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("unknown peer seal: %v", err)
	}
	if err := s.SetPeerSeal(ctx, mailstore.PeerSeal{Domain: "B.test"}); !errors.Is(err, mailstore.ErrInvalid) {
		t.Errorf("peer seal without CA: %v", err)
	}
	for _, ca := range []string{"PEM 1", "PEM 2"} {
		if err := s.SetPeerSeal(ctx, mailstore.PeerSeal{Domain: "B.test", CA: ca, CRLFile: "/crl/b.pem"}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.PeerSeal(ctx, "b.TEST")
	if err != nil || p.CA != "PEM 2" || p.CRLFile != "/crl/b.pem" || p.Domain != "b.test" {
		t.Errorf("peer seal: %+v, %v", p, err)
	}
	if err := s.RemovePeerSeal(ctx, "b.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PeerSeal(ctx, "b.test"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("removed peer seal: %v", err)
	}

	storetest.Setup(t, s, "staff@example.test")
	for _, a := range []string{"vt1@example.test", "vt2@example.test"} {
		if _, err := s.AddAccount(ctx, mailstore.NewAccount{Address: a, Password: "pw", Role: mailstore.RoleClerk}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetDisabled(ctx, "vt2@example.test", true); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Clerks(ctx, "example.test")
	if err != nil || len(cs) != 1 || cs[0].Address != "vt1@example.test" {
		t.Errorf("clerks: %+v, %v", cs, err)
	}
}
