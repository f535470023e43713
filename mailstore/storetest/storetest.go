// Package storetest is the behaviour every mail store backend must show. A backend's
// tests call Run with a function that opens a fresh, empty store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
)

// Opener returns a new empty store in a fresh location, built from the
// metadata backend and the blob store under test; cleanup is the opener's job.
type Opener func(t *testing.T) *mailstore.Store

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *mailstore.Store)
	}{
		{"Accounts", testAccounts},
		{"Aliases", testAliases},
		{"Mailboxes", testMailboxes},
		{"DeliverFetch", testDeliverFetch},
		{"SingleInstance", testSingleInstance},
		{"Accept", testAccept},
		{"Overfill", testOverfill},
		{"Flags", testFlags},
		{"Quota", testQuota},
		{"AppendMany", testAppendMany},
		{"Search", testSearch},
		{"SearchFields", testSearchFields},
		{"SearchCriteria", testSearchCriteria},
		{"SearchMalformed", testSearchMalformed},
		{"Watch", testWatch},
		{"ManyRanges", testManyRanges},
		{"Counters", testCounters},
		{"ModSeq", testModSeq},
		{"Recent", testRecent},
		{"ContentRanges", testContentRanges},
		{"ContentDamage", testContentDamage},
		{"ReclaimRace", testReclaimRace},
		{"CheckContent", testCheckContent},
		{"Backup", testBackup},
		{"InternalDateZone", testInternalDateZone},
		{"WebSessions", testWebSessions},
		{"Vacation", testVacation},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Msg builds a small RFC 5322 message.
func Msg(from, to, subject, body string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Sat, 28 Nov 2026 10:00:00 +0700\r\nMessage-ID: <%d@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n",
		from, to, subject, time.Now().UnixNano(), body))
}

// Setup adds domain example.test and accounts with password "pw".
func Setup(t testing.TB, s *mailstore.Store, addrs ...string) []mailstore.Account {
	t.Helper()
	ctx := context.Background()
	if err := s.AddDomain(ctx, mailstore.Domain{Name: "example.test"}); err != nil && !errors.Is(err, mailstore.ErrExists) {
		t.Fatal(err)
	}
	var out []mailstore.Account
	for _, a := range addrs {
		acct, err := s.AddAccount(ctx, mailstore.NewAccount{Address: a, Password: "pw", Name: "Nguyễn Văn " + a})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, acct)
	}
	return out
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func testAccounts(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "Nam@Example.test")[0]
	if a.Address != "nam@example.test" {
		t.Errorf("address not normalised: %q", a.Address)
	}
	if _, err := s.AddAccount(ctx, mailstore.NewAccount{Address: "nam@example.test", Password: "x"}); !errors.Is(err, mailstore.ErrExists) {
		t.Errorf("duplicate account: %v", err)
	}
	if _, err := s.AddAccount(ctx, mailstore.NewAccount{Address: "x@elsewhere.test", Password: "x"}); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("account in unknown domain: %v", err)
	}
	if _, err := s.Authenticate(ctx, "nam@example.test", "pw"); err != nil {
		t.Errorf("good password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "nam@example.test", "bad"); !errors.Is(err, mailstore.ErrAuthFailed) {
		t.Errorf("bad password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "nobody@example.test", "pw"); !errors.Is(err, mailstore.ErrAuthFailed) {
		t.Errorf("unknown user: %v", err)
	}
	// A changed password invalidates the remembered login at once.
	must[struct{}](t)(struct{}{}, s.SetPassword(ctx, "nam@example.test", "new"))
	if _, err := s.Authenticate(ctx, "nam@example.test", "pw"); !errors.Is(err, mailstore.ErrAuthFailed) {
		t.Errorf("old password after change: %v", err)
	}
	must[struct{}](t)(struct{}{}, s.SetDisabled(ctx, "nam@example.test", true))
	if _, err := s.Authenticate(ctx, "nam@example.test", "new"); !errors.Is(err, mailstore.ErrDisabled) {
		t.Errorf("disabled account: %v", err)
	}
	// All or nothing.
	_, err := s.AddAccounts(ctx, []mailstore.NewAccount{{Address: "a1@example.test", Password: "p"}, {Address: "nam@example.test", Password: "p"}})
	if !errors.Is(err, mailstore.ErrExists) {
		t.Errorf("bulk add with a duplicate: %v", err)
	}
	if _, err := s.Account(ctx, "a1@example.test"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("bulk add was not all-or-nothing: %v", err)
	}
	mbs := must[[]mailstore.Mailbox](t)(s.Mailboxes(ctx, a.ID))
	var names []string
	for _, m := range mbs {
		names = append(names, m.Name)
	}
	for _, want := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} {
		if !slices.Contains(names, want) {
			t.Errorf("default mailbox %s missing from %v", want, names)
		}
	}
	must[struct{}](t)(struct{}{}, s.RemoveAccount(ctx, "nam@example.test"))
	if _, err := s.Account(ctx, "nam@example.test"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("removed account still there: %v", err)
	}
}

func testAliases(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	accts := Setup(t, s, "a@example.test", "b@example.test", "c@example.test")
	must[struct{}](t)(struct{}{}, s.AddAlias(ctx, "all@example.test", []string{"a@example.test", "team@example.test"}))
	must[struct{}](t)(struct{}{}, s.AddAlias(ctx, "team@example.test", []string{"b@example.test", "c@example.test", "x@remote.test"}))
	// A loop is refused when added, and the alias is left as it was (issue
	// 15 defect 10); so is an alias that reaches nobody.
	if err := s.AddAlias(ctx, "team@example.test", []string{"all@example.test"}); !errors.Is(err, mailstore.ErrInvalid) {
		t.Errorf("alias loop accepted: %v", err)
	}
	if err := s.AddAlias(ctx, "void@example.test", []string{"nobody@example.test"}); !errors.Is(err, mailstore.ErrInvalid) {
		t.Errorf("alias to nobody accepted: %v", err)
	}
	got, remote := func() ([]mailstore.Account, []string) {
		a, r, err := s.Resolve(ctx, "all@example.test")
		if err != nil {
			t.Fatal(err)
		}
		return a, r
	}()
	if len(got) != 3 || !slices.Equal(remote, []string{"x@remote.test"}) {
		t.Errorf("all@ resolves to %v remote %v", got, remote)
	}
	if as := must[[]mailstore.Alias](t)(s.Aliases(ctx)); len(as) != 2 || len(as[1].Targets) != 3 {
		t.Errorf("aliases after refused changes: %+v", as)
	}
	if ok, _ := s.Owns(ctx, accts[1], "all@example.test"); !ok {
		t.Error("member of a nested list cannot send as the list")
	}
	if ok, _ := s.Owns(ctx, accts[0], "b@example.test"); ok {
		t.Error("a may send as b")
	}
	if _, _, err := s.Resolve(ctx, "nobody@example.test"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("unknown address: %v", err)
	}
	must[struct{}](t)(struct{}{}, s.AddAlias(ctx, "@example.test", []string{"c@example.test"}))
	got, _, err := s.Resolve(ctx, "nobody@example.test")
	if err != nil || len(got) != 1 || got[0].Address != "c@example.test" {
		t.Errorf("catch-all: %v %v", got, err)
	}
	if ok, _ := s.Owns(ctx, accts[2], "nobody@example.test"); ok {
		t.Error("catch-all target may send as any address")
	}
}

func testMailboxes(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "m@example.test")[0]
	mb := must[mailstore.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Văn bản đến/2026/Sở Tài chính", ""))
	if mb.Name != "Văn bản đến/2026/Sở Tài chính" {
		t.Errorf("name mangled: %q", mb.Name)
	}
	if _, err := s.Mailbox(ctx, a.ID, "Văn bản đến/2026"); err != nil {
		t.Errorf("parent not created: %v", err)
	}
	if _, err := s.CreateMailbox(ctx, a.ID, "Văn bản đến", ""); !errors.Is(err, mailstore.ErrExists) {
		t.Errorf("duplicate mailbox: %v", err)
	}
	must[struct{}](t)(struct{}{}, s.RenameMailbox(ctx, a.ID, "Văn bản đến", "Lưu trữ/Văn bản đến"))
	if _, err := s.Mailbox(ctx, a.ID, "Lưu trữ/Văn bản đến/2026/Sở Tài chính"); err != nil {
		t.Errorf("child not renamed: %v", err)
	}
	renamed := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "Lưu trữ/Văn bản đến/2026/Sở Tài chính"))
	if renamed.UIDValidity != mb.UIDValidity {
		t.Error("rename changed UIDVALIDITY")
	}
	// INBOX rename moves the messages and leaves INBOX empty.
	must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@y", "m@example.test", "hi", "body"), nil, time.Time{}))
	must[struct{}](t)(struct{}{}, s.RenameMailbox(ctx, a.ID, "inbox", "Old"))
	old := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "Old"))
	inbox := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	if st := must[mailstore.Status](t)(s.MailboxStatus(ctx, old.ID)); st.Messages != 1 {
		t.Errorf("Old has %d messages", st.Messages)
	}
	if st := must[mailstore.Status](t)(s.MailboxStatus(ctx, inbox.ID)); st.Messages != 0 {
		t.Errorf("INBOX has %d messages after rename", st.Messages)
	}
	if err := s.DeleteMailbox(ctx, a.ID, "INBOX"); err == nil {
		t.Error("INBOX deleted")
	}
	must[struct{}](t)(struct{}{}, s.DeleteMailbox(ctx, a.ID, "Old"))
	again := must[mailstore.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Old", ""))
	if again.UIDValidity == old.UIDValidity {
		t.Error("re-created mailbox reuses UIDVALIDITY")
	}
}

func testDeliverFetch(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "f@example.test")[0]
	raw := []byte("From: =?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@example.test>\r\nTo: f@example.test\r\nSubject: =?utf-8?b?" +
		"VsSDbiBi4bqjbiB24buBIMSQw6AgTuG6tW5n?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nxin chào\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=cv.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n")
	d := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", raw, []string{`\seen`, "$Label1", "ÄÖ"}, time.Unix(1700000000, 0)))
	if d.UID != 1 {
		t.Errorf("first UID %d", d.UID)
	}
	var items []mailstore.Item
	must[struct{}](t)(struct{}{}, s.Fetch(ctx, d.MailboxID, nil, mailstore.FetchEnvelope|mailstore.FetchStructure|mailstore.FetchContent, func(it mailstore.Item) error {
		items = append(items, it)
		return nil
	}))
	if len(items) != 1 {
		t.Fatalf("fetched %d", len(items))
	}
	it := items[0]
	if !bytes.Equal(it.Content, raw) {
		t.Error("content not byte-exact")
	}
	if it.Envelope.Subject != "Văn bản về Đà Nẵng" || it.Envelope.From[0].Name != "Nguyễn Văn A" {
		t.Errorf("envelope: %+v", it.Envelope)
	}
	if it.Structure.Type != "multipart" || len(it.Structure.Children) != 2 || it.Structure.Children[1].Disposition != "attachment" {
		t.Errorf("structure: %+v", it.Structure)
	}
	if !slices.Equal(it.Flags, []string{`\Seen`, "$Label1", "ÄÖ"}) {
		t.Errorf("flags %v", it.Flags)
	}
	if !it.InternalDate.Equal(time.Unix(1700000000, 0)) || it.Size != int64(len(raw)) {
		t.Errorf("date %v size %d", it.InternalDate, it.Size)
	}
	// Broken MIME is stored byte-exact and does not fail delivery.
	broken := []byte("Subject: broken\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nunterminated")
	d2 := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", broken, nil, time.Time{}))
	must[struct{}](t)(struct{}{}, s.Fetch(ctx, d.MailboxID, []uint32{d2.UID}, mailstore.FetchContent|mailstore.FetchStructure, func(it mailstore.Item) error {
		if !bytes.Equal(it.Content, broken) {
			t.Error("broken message altered")
		}
		return nil
	}))
}

func testSingleInstance(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	accts := Setup(t, s, "s1@example.test", "s2@example.test", "s3@example.test")
	body := bytes.Repeat([]byte("circular "), 100000)
	raw := append(Msg("boss@example.test", "all@example.test", "Circular", ""), body...)
	var targets []mailstore.Target
	for _, a := range accts {
		targets = append(targets, mailstore.Target{AccountID: a.ID})
	}
	ds := must[[]mailstore.Delivered](t)(s.Deliver(ctx, raw, time.Time{}, targets))
	must[struct{}](t)(struct{}{}, s.WaitIndexed(ctx))
	st := must[mailstore.StorageStats](t)(s.StorageStats(ctx))
	if st.Blobs != 1 || st.Refs != 3 || st.Messages != 3 || st.Indexed != 1 {
		t.Fatalf("after fan-out: %+v", st)
	}
	if n, size := stored(t, s); n != 1 || size != int64(len(raw)) {
		t.Fatalf("blob store holds %d contents, %d bytes, after a fan-out of one %d byte message", n, size, len(raw))
	}
	if st.ContentBytes > int64(len(raw))+1024 {
		t.Errorf("content stored more than once: %d bytes for a %d byte message", st.ContentBytes, len(raw))
	}
	archive := must[mailstore.Mailbox](t)(s.Mailbox(ctx, accts[0].ID, "Archive"))
	must[uint32](t)(func() (uint32, error) {
		v, _, err := s.Copy(ctx, ds[0].MailboxID, []uint32{ds[0].UID}, archive.ID)
		return v, err
	}())
	trash := must[mailstore.Mailbox](t)(s.Mailbox(ctx, accts[0].ID, "Trash"))
	must[uint32](t)(func() (uint32, error) { v, _, err := s.Move(ctx, archive.ID, []uint32{1}, trash.ID); return v, err }())
	st = must[mailstore.StorageStats](t)(s.StorageStats(ctx))
	if st.Blobs != 1 || st.Refs != 4 || st.Messages != 4 {
		t.Fatalf("after copy and move: %+v", st)
	}
	for i, d := range ds {
		must[[]mailstore.Message](t)(s.StoreFlags(ctx, d.MailboxID, []uint32{d.UID}, mailstore.FlagsAdd, []string{`\Deleted`}))
		if got := must[[]uint32](t)(s.Expunge(ctx, d.MailboxID, nil)); len(got) != 1 {
			t.Fatalf("expunge %d: %v", i, got)
		}
	}
	st = must[mailstore.StorageStats](t)(s.StorageStats(ctx))
	if st.Blobs != 1 || st.Refs != 1 {
		t.Fatalf("after expunging 3 of 4: %+v", st)
	}
	must[[]mailstore.Message](t)(s.StoreFlags(ctx, trash.ID, nil, mailstore.FlagsAdd, []string{`\Deleted`}))
	must[[]uint32](t)(s.Expunge(ctx, trash.ID, nil))
	st = must[mailstore.StorageStats](t)(s.StorageStats(ctx))
	if st.Blobs != 0 || st.Refs != 0 || st.ContentBytes != 0 {
		t.Fatalf("content not reclaimed: %+v", st)
	}
	must[struct{}](t)(struct{}{}, s.Reclaim(ctx))
	if n, _ := stored(t, s); n != 0 {
		t.Fatalf("blob store still holds %d contents after the last copy was expunged", n)
	}
	if hits := must[[]uint32](t)(s.SearchText(ctx, trash.ID, mailstore.FieldText, "circular")); len(hits) != 0 {
		t.Errorf("index still finds reclaimed content: %v", hits)
	}
	must[struct{}](t)(struct{}{}, s.WaitIndexed(ctx))
	if st = must[mailstore.StorageStats](t)(s.StorageStats(ctx)); st.Indexed != 0 {
		t.Errorf("index entries of reclaimed content not removed: %+v", st)
	}
}

func testFlags(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "fl@example.test")[0]
	d := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@y", "fl@example.test", "s", "b"), []string{"Work"}, time.Time{}))
	got := must[[]mailstore.Message](t)(s.StoreFlags(ctx, d.MailboxID, []uint32{d.UID}, mailstore.FlagsAdd, []string{`\SEEN`, "work", "$Important"}))
	if len(got) != 1 || !slices.Equal(got[0].Flags, []string{"Work", `\Seen`, "$Important"}) {
		t.Errorf("add: %+v", got)
	}
	got = must[[]mailstore.Message](t)(s.StoreFlags(ctx, d.MailboxID, []uint32{d.UID}, mailstore.FlagsRemove, []string{"WORK"}))
	if len(got) != 1 || !slices.Equal(got[0].Flags, []string{`\Seen`, "$Important"}) {
		t.Errorf("remove: %+v", got)
	}
	got = must[[]mailstore.Message](t)(s.StoreFlags(ctx, d.MailboxID, []uint32{d.UID}, mailstore.FlagsAdd, []string{`\Seen`}))
	if len(got) != 0 {
		t.Errorf("no-op store reported a change: %+v", got)
	}
	st := must[mailstore.Status](t)(s.MailboxStatus(ctx, d.MailboxID))
	if st.Unseen != 0 || st.Messages != 1 {
		t.Errorf("status %+v", st)
	}
}

func testQuota(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	Setup(t, s)
	a := must[mailstore.Account](t)(s.AddAccount(ctx, mailstore.NewAccount{Address: "q@example.test", Password: "pw", Quota: 1000}))
	b := Setup(t, s, "q2@example.test")[0]
	small := Msg("x@y", "q@example.test", "s", "b")
	must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", small, nil, time.Time{}))
	big := Msg("x@y", "q@example.test", "s", string(bytes.Repeat([]byte("x"), 1000)))
	if _, err := s.Append(ctx, a.ID, "INBOX", big, nil, time.Time{}); !errors.Is(err, mailstore.ErrOverQuota) {
		t.Errorf("append over quota: %v", err)
	}
	ds := must[[]mailstore.Delivered](t)(s.Deliver(ctx, big, time.Time{}, []mailstore.Target{{AccountID: a.ID}, {AccountID: b.ID}}))
	if !errors.Is(ds[0].Err, mailstore.ErrOverQuota) || ds[1].Err != nil {
		t.Errorf("fan-out with one over quota: %v, %v", ds[0].Err, ds[1].Err)
	}
	acct := must[mailstore.Account](t)(s.Account(ctx, "q@example.test"))
	if acct.Used != int64(len(small)) {
		t.Errorf("used %d, want %d", acct.Used, len(small))
	}
	ds = must[[]mailstore.Delivered](t)(s.Deliver(ctx, big, time.Time{}, []mailstore.Target{{AccountID: a.ID, IgnoreQuota: true}}))
	if ds[0].Err != nil {
		t.Errorf("notice ignoring quota: %v", ds[0].Err)
	}
}

// testAppendMany stores a batch as one operation: UIDs in order, counters,
// quota and the index kept as by Append; a batch over quota stores nothing.
func testAppendMany(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	Setup(t, s)
	a := must[mailstore.Account](t)(s.AddAccount(ctx, mailstore.NewAccount{Address: "bulk@example.test", Password: "pw", Quota: 5000}))
	first := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "Lưu trữ", Msg("x@y", "bulk@example.test", "một", "đầu tiên"), nil, time.Time{}))
	var msgs []mailstore.NewMessage
	var size int64
	for i := range 3 {
		m := Msg("x@y", "bulk@example.test", fmt.Sprintf("Công văn %d", i), "Hội nghị tại Huế")
		size += int64(len(m))
		msgs = append(msgs, mailstore.NewMessage{Content: m, Flags: []string{`\Seen`, "$Imported"}, Date: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)})
	}
	msgs = append(msgs, msgs[0]) // the same content twice: stored once
	size += int64(len(msgs[0].Content))
	uids := must[[]uint32](t)(s.AppendMany(ctx, a.ID, "Lưu trữ", msgs))
	if !slices.Equal(uids, []uint32{first.UID + 1, first.UID + 2, first.UID + 3, first.UID + 4}) {
		t.Fatalf("AppendMany UIDs %v after %d", uids, first.UID)
	}
	st := must[mailstore.Status](t)(s.MailboxStatus(ctx, first.MailboxID))
	if st.Messages != 5 || st.Unseen != 1 {
		t.Errorf("status after AppendMany: %+v", st)
	}
	if got := must[[]uint32](t)(s.SearchText(ctx, first.MailboxID, mailstore.FieldBody, "hue")); !slices.Equal(got, uids) {
		t.Errorf("search before indexing: %v", got)
	}
	must[struct{}](t)(struct{}{}, s.WaitIndexed(ctx))
	if got := must[[]uint32](t)(s.SearchText(ctx, first.MailboxID, mailstore.FieldSubject, "cong van 1")); !slices.Equal(got, uids[1:2]) {
		t.Errorf("search after indexing: %v", got)
	}
	var dates []time.Time
	must[struct{}](t)(struct{}{}, s.Fetch(ctx, first.MailboxID, uids, 0, func(it mailstore.Item) error {
		dates = append(dates, it.Message.InternalDate)
		if !slices.Contains(it.Message.Flags, "$Imported") {
			t.Errorf("flags of %d: %v", it.Message.UID, it.Message.Flags)
		}
		return nil
	}))
	if len(dates) != 4 || !dates[3].Equal(msgs[3].Date) {
		t.Errorf("internal dates: %v", dates)
	}
	acct := must[mailstore.Account](t)(s.Account(ctx, "bulk@example.test"))
	if want := int64(len(Msg("x@y", "bulk@example.test", "một", "đầu tiên"))) + size; acct.Used < want-64 || acct.Used > want+64 {
		t.Errorf("used %d, want about %d", acct.Used, want)
	}
	big := []mailstore.NewMessage{{Content: Msg("x@y", "bulk@example.test", "nhỏ", "a")}, {Content: Msg("x@y", "bulk@example.test", "lớn", strings.Repeat("x", 5000))}}
	if _, err := s.AppendMany(ctx, a.ID, "Lưu trữ", big); !errors.Is(err, mailstore.ErrOverQuota) {
		t.Errorf("AppendMany over quota: %v", err)
	}
	if st := must[mailstore.Status](t)(s.MailboxStatus(ctx, first.MailboxID)); st.Messages != 5 {
		t.Errorf("a batch over quota stored part of itself: %+v", st)
	}
}

func testSearch(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "se@example.test")[0]
	add := func(raw []byte) uint32 {
		return must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", raw, nil, time.Time{})).UID
	}
	u1 := add(Msg("Trần Thị Đào <dao@example.test>", "se@example.test", "Công văn về Đà Nẵng", "Kính gửi Sở Tài chính, đề nghị xem xét."))
	u2 := add(Msg("b@example.test", "se@example.test", "Họp giao ban", "Lịch họp tuần sau tại Hà Nội."))
	// windows-1258 body, with its combining tone marks: "Hà Nội" as 0x48 0xE0 ... in cp1258 with 0xCC/0xD2 marks.
	cp := []byte("From: c@example.test\r\nSubject: cp1258\r\nContent-Type: text/plain; charset=windows-1258\r\n\r\nTh\xf4ng ba\xf2o v\xea\xcc \xd0\xe0 N\xe3\xf2ng\r\n")
	u3 := add(cp)
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	check := func(stage string) {
		t.Helper()
		searchCases(t, s, mb.ID, stage, u1, u2, u3)
	}
	check("before indexing")
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	check("indexed")
	if got := must[[]uint32](t)(s.SearchHeader(ctx, mb.ID, "Subject", "giao ban")); !slices.Equal(got, []uint32{u2}) {
		t.Errorf("header search: %v", got)
	}
}

func searchCases(t *testing.T, s *mailstore.Store, mbID int64, stage string, u1, u2, u3 uint32) {
	t.Helper()
	for _, c := range []struct {
		f    mailstore.Field
		q    string
		want []uint32
	}{
		{mailstore.FieldText, "da nang", []uint32{u1, u3}},
		{mailstore.FieldSubject, "DA NANG", []uint32{u1}},
		{mailstore.FieldBody, "so tai chinh", []uint32{u1}},
		{mailstore.FieldBody, "Hà Nội", []uint32{u2}},
		{mailstore.FieldFrom, "tran thi dao", []uint32{u1}},
		{mailstore.FieldFrom, "đào", []uint32{u1}},
		{mailstore.FieldText, "giao ban", []uint32{u2}},
		{mailstore.FieldText, "xyzzy", nil},
		{mailstore.FieldTo, "se@example", []uint32{u1, u2}},
		{mailstore.FieldText, "nang da", nil}, // words in the wrong order are not a substring
		// Substrings starting inside a word (RFC 3501 6.4.4).
		{mailstore.FieldText, "ang", []uint32{u1, u3}},
		{mailstore.FieldFrom, "ran thi da", []uint32{u1}},
		{mailstore.FieldBody, "ai chin", []uint32{u1}},
		{mailstore.FieldSubject, "ong van ve", []uint32{u1}},
		{mailstore.FieldTo, "e@exam", []uint32{u1, u2}},
		{mailstore.FieldBody, "ai chinh de", nil}, // "," between
	} {
		got := must[[]uint32](t)(s.SearchText(context.Background(), mbID, c.f, c.q))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: search %d %q = %v, want %v", stage, c.f, c.q, got, c.want)
		}
	}
}

func testWatch(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "w@example.test")[0]
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	c := make(chan struct{}, 1)
	stop := s.Watch(mb.ID, func() {
		select {
		case c <- struct{}{}:
		default:
		}
	})
	defer stop()
	d := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@y", "w@example.test", "s", "b"), nil, time.Time{}))
	select {
	case <-c:
	case <-time.After(2 * time.Second):
		t.Fatal("no signal for new message")
	}
	chs := must[[]mailstore.Change](t)(s.Changes(ctx, mb.ID, mb.ModSeq))
	if len(chs) != 1 || chs[0].Kind != mailstore.ChangeNew || chs[0].UID != d.UID {
		t.Errorf("changes: %+v", chs)
	}
	must[[]mailstore.Message](t)(s.StoreFlags(ctx, mb.ID, []uint32{d.UID}, mailstore.FlagsAdd, []string{`\Deleted`}))
	must[[]uint32](t)(s.Expunge(ctx, mb.ID, nil))
	<-c
	chs = must[[]mailstore.Change](t)(s.Changes(ctx, mb.ID, chs[0].ID))
	if len(chs) != 2 || chs[0].Kind != mailstore.ChangeFlags || chs[1].Kind != mailstore.ChangeExpunge {
		t.Errorf("changes: %+v", chs)
	}
	// Pruning keeps the newest change: it is the mailbox's modseq.
	before := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	must[struct{}](t)(struct{}{}, s.PruneChanges(ctx, -time.Hour, -time.Hour))
	after := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	if after.ModSeq != before.ModSeq || after.ModSeq != chs[1].ID {
		t.Errorf("modseq %d after pruning, %d before", after.ModSeq, before.ModSeq)
	}
	if got := must[[]mailstore.Change](t)(s.Changes(ctx, mb.ID, 0)); len(got) != 1 {
		t.Errorf("%d changes left after pruning, want the newest only", len(got))
	}
}

// testManyRanges works on UID sets of many disjoint runs: every tenth message of
// a large mailbox, and "all" over a mailbox with a gap after every message.
func testManyRanges(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "r@example.test")[0]
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	const n = 12000
	var targets []mailstore.Target
	for i := 0; i < n; i++ {
		targets = append(targets, mailstore.Target{AccountID: a.ID})
	}
	// One content, n messages: quick to set up, same UID arithmetic.
	must[[]mailstore.Delivered](t)(s.Deliver(ctx, Msg("x@y", "r@example.test", "s", "b"), time.Time{}, targets))
	var every10 []uint32
	for uid := uint32(1); uid <= n; uid += 10 {
		every10 = append(every10, uid)
	}
	if got := must[[]mailstore.Message](t)(s.StoreFlags(ctx, mb.ID, every10, mailstore.FlagsAdd, []string{`\Deleted`})); len(got) != len(every10) {
		t.Fatalf("flagged %d of %d", len(got), len(every10))
	}
	if got := must[[]uint32](t)(s.Expunge(ctx, mb.ID, nil)); len(got) != len(every10) {
		t.Fatalf("expunged %d of %d", len(got), len(every10))
	}
	// The remaining UIDs now have a gap every ten: more than a thousand runs.
	var rest []uint32
	for _, m := range must[[]mailstore.Message](t)(s.Messages(ctx, mb.ID)) {
		rest = append(rest, m.UID)
	}
	if got := must[[]mailstore.Message](t)(s.StoreFlags(ctx, mb.ID, rest, mailstore.FlagsAdd, []string{`\Seen`})); len(got) != n-len(every10) {
		t.Errorf("marked %d of %d as seen", len(got), n-len(every10))
	}
	count := 0
	must[struct{}](t)(struct{}{}, s.Fetch(ctx, mb.ID, every10[1:], 0, func(mailstore.Item) error { count++; return nil }))
	if count != 0 {
		t.Errorf("fetched %d expunged messages", count)
	}
	must[struct{}](t)(struct{}{}, s.Fetch(ctx, mb.ID, rest, 0, func(mailstore.Item) error { count++; return nil }))
	if count != len(rest) {
		t.Errorf("fetched %d of %d", count, len(rest))
	}
}

// testCounters runs random deliveries, flag changes, copies, moves, expunges
// and mailbox deletions, and after each step checks that the maintained
// counters, UID runs and keywords agree with the messages (CheckCounters) and
// that View says what a scan of the mailbox says.
func testCounters(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "c@example.test")[0]
	names := []string{"INBOX", "Lưu trữ", "Thùng rác"}
	for _, n := range names[1:] {
		must[mailstore.Mailbox](t)(s.CreateMailbox(ctx, a.ID, n, ""))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	mailbox := func() mailstore.Mailbox {
		return must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, names[rnd.IntN(len(names))]))
	}
	some := func(mb mailstore.Mailbox) []uint32 {
		var out []uint32
		for _, m := range must[[]mailstore.Message](t)(s.Messages(ctx, mb.ID)) {
			if rnd.IntN(3) == 0 {
				out = append(out, m.UID)
			}
		}
		return out
	}
	flagSets := [][]string{nil, {`\Seen`}, {`\Deleted`}, {`\Seen`, `\Deleted`}, {"Gấp", `\Flagged`}, {"$Label1"}}
	for step := 0; step < 300; step++ {
		mb := mailbox()
		var what string
		switch k := rnd.IntN(10); {
		case k < 3:
			what = "deliver"
			var targets []mailstore.Target
			for range 1 + rnd.IntN(5) {
				targets = append(targets, mailstore.Target{AccountID: a.ID, Mailbox: mb.Name, Flags: flagSets[rnd.IntN(len(flagSets))]})
			}
			must[[]mailstore.Delivered](t)(s.Deliver(ctx, Msg("x@y", "c@example.test", fmt.Sprint("s", step), "b"), time.Time{}, targets))
		case k < 6:
			what = "flags"
			op := []mailstore.FlagOp{mailstore.FlagsAdd, mailstore.FlagsRemove, mailstore.FlagsSet}[rnd.IntN(3)]
			must[[]mailstore.Message](t)(s.StoreFlags(ctx, mb.ID, some(mb), op, flagSets[rnd.IntN(len(flagSets))]))
		case k < 7:
			what = "copy"
			dst := mailbox()
			must[[]mailstore.UIDPair](t)(func() ([]mailstore.UIDPair, error) {
				_, p, err := s.Copy(ctx, mb.ID, some(mb), dst.ID)
				return p, err
			}())
		case k < 8:
			what = "move"
			if dst := mailbox(); dst.ID != mb.ID {
				must[[]mailstore.UIDPair](t)(func() ([]mailstore.UIDPair, error) {
					_, p, err := s.Move(ctx, mb.ID, some(mb), dst.ID)
					return p, err
				}())
			}
		case k < 9:
			what = "expunge"
			if rnd.IntN(2) == 0 {
				must[[]uint32](t)(s.Expunge(ctx, mb.ID, nil))
			} else {
				must[[]uint32](t)(s.Expunge(ctx, mb.ID, some(mb)))
			}
		default:
			what = "delete mailbox"
			if mb.Name != "INBOX" && rnd.IntN(4) == 0 {
				must[struct{}](t)(struct{}{}, s.DeleteMailbox(ctx, a.ID, mb.Name))
				must[mailstore.Mailbox](t)(s.CreateMailbox(ctx, a.ID, mb.Name, ""))
			}
		}
		if err := s.CheckCounters(ctx); err != nil {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
		checkView(t, s, mailbox())
	}
}

// checkView compares a mailbox's View with a scan of its messages.
func checkView(t *testing.T, s *mailstore.Store, mb mailstore.Mailbox) {
	t.Helper()
	ctx := context.Background()
	v := must[mailstore.View](t)(s.View(ctx, mb.ID))
	var want mailstore.Status
	var uids []uint32
	var firstUnseen uint32
	keywords := map[string]bool{}
	for _, m := range must[[]mailstore.Message](t)(s.Messages(ctx, mb.ID)) {
		uids = append(uids, m.UID)
		want.Messages++
		want.Size += m.Size
		if !slices.Contains(m.Flags, `\Seen`) {
			want.Unseen++
			if firstUnseen == 0 {
				firstUnseen = m.UID
			}
		}
		if slices.Contains(m.Flags, `\Deleted`) {
			want.Deleted++
		}
		for _, f := range m.Flags {
			if f[0] != '\\' {
				keywords[f] = true
			}
		}
	}
	var got []uint32
	for _, r := range v.UIDs.Runs() {
		for u := r.First; u <= r.Last; u++ {
			got = append(got, u)
		}
	}
	if v.Status != want || !slices.Equal(got, uids) || v.FirstUnseen != firstUnseen {
		t.Fatalf("view of %s: %+v runs %v first unseen %d; scan: %+v %v %d", mb.Name, v.Status, v.UIDs, v.FirstUnseen, want, uids, firstUnseen)
	}
	for k := range keywords {
		if !slices.ContainsFunc(v.Keywords, func(x string) bool { return strings.EqualFold(x, k) }) {
			t.Fatalf("view of %s: keyword %q missing from %v", mb.Name, k, v.Keywords)
		}
	}
	if st := must[mailstore.Status](t)(s.MailboxStatus(ctx, mb.ID)); st != want {
		t.Fatalf("status of %s: %+v, scan says %+v", mb.Name, st, want)
	}
}

// testModSeq: every delivery, flag change and expunge bumps a modseq; what
// changed and what vanished since a modseq are found exactly, across pruning
// of the change log too (then as a superset).
func testModSeq(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "ms@example.test")[0]
	var uids []uint32
	for i := 0; i < 8; i++ {
		uids = append(uids, must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@y", "ms@example.test", fmt.Sprint(i), "b"), nil, time.Time{})).UID)
	}
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	if got := must[mailstore.View](t)(s.View(ctx, mb.ID)).UIDs; fmt.Sprint(got) != "[{1 8}]" {
		t.Errorf("UIDRanges: %v", got)
	}
	base := mb.ModSeq
	changed, modified, err := s.StoreFlagsIf(ctx, mb.ID, []uint32{2, 3}, mailstore.FlagsAdd, []string{`\Deleted`}, base)
	if err != nil || len(changed) != 2 || len(modified) != 0 || changed[0].ModSeq <= base {
		t.Fatalf("StoreFlagsIf: %v %v %v", changed, modified, err)
	}
	// Message 2 changed after base: a condition on base now fails for it only.
	changed, modified, err = s.StoreFlagsIf(ctx, mb.ID, []uint32{1, 2}, mailstore.FlagsAdd, []string{`\Seen`}, base)
	if err != nil || len(changed) != 1 || changed[0].UID != 1 || fmt.Sprint(modified) != "[2]" {
		t.Fatalf("StoreFlagsIf on a changed message: %v %v %v", changed, modified, err)
	}
	must[[]uint32](t)(s.Expunge(ctx, mb.ID, nil))
	var got []uint32
	must[struct{}](t)(struct{}{}, s.FetchChanged(ctx, mb.ID, nil, base, 0, func(it mailstore.Item) error {
		got = append(got, it.UID)
		return nil
	}))
	if fmt.Sprint(got) != "[1]" {
		t.Errorf("FetchChanged: %v", got)
	}
	if got := must[[]mailstore.UIDRange](t)(s.Vanished(ctx, mb.ID, base)); fmt.Sprint(got) != "[{2 3}]" {
		t.Errorf("Vanished: %v", got)
	}
	after := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX")).ModSeq
	if got := must[[]mailstore.UIDRange](t)(s.Vanished(ctx, mb.ID, after)); len(got) != 0 {
		t.Errorf("Vanished since now: %v", got)
	}
	if got := must[mailstore.View](t)(s.View(ctx, mb.ID)).UIDs; fmt.Sprint(got) != "[{1 1} {4 8}]" {
		t.Errorf("UIDRanges: %v", got)
	}
	// Pruning flag records only keeps expunges exact; pruning expunges makes
	// Vanished answer with every UID below UIDNEXT not in the mailbox.
	must[struct{}](t)(struct{}{}, s.PruneChanges(ctx, -time.Hour, time.Hour))
	if got := must[[]mailstore.UIDRange](t)(s.Vanished(ctx, mb.ID, base)); fmt.Sprint(got) != "[{2 3}]" {
		t.Errorf("Vanished after pruning flag changes: %v", got)
	}
	must[[]uint32](t)(s.Expunge(ctx, mb.ID, nil)) // nothing
	must[[]mailstore.Message](t)(s.StoreFlags(ctx, mb.ID, []uint32{8}, mailstore.FlagsAdd, []string{`\Deleted`}))
	must[[]uint32](t)(s.Expunge(ctx, mb.ID, nil))
	must[struct{}](t)(struct{}{}, s.PruneChanges(ctx, -time.Hour, -time.Hour))
	if got := must[[]mailstore.UIDRange](t)(s.Vanished(ctx, mb.ID, base)); fmt.Sprint(got) != "[{2 3} {8 8}]" {
		t.Errorf("Vanished after pruning expunges: %v", got)
	}
}

// testRecent: the first claim of new messages wins; later ones get nothing.
func testRecent(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "rc@example.test")[0]
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	for i := 0; i < 3; i++ {
		must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@y", "rc@example.test", fmt.Sprint(i), "b"), nil, time.Time{}))
	}
	if n := must[uint32](t)(s.UnclaimedRecent(ctx, mb.ID)); n != 3 {
		t.Errorf("unclaimed %d, want 3", n)
	}
	if from := must[uint32](t)(s.ClaimRecent(ctx, mb.ID, 2)); from != 0 {
		t.Errorf("first claim from %d", from)
	}
	if from := must[uint32](t)(s.ClaimRecent(ctx, mb.ID, 3)); from != 2 {
		t.Errorf("second claim from %d, want 2", from)
	}
	if from := must[uint32](t)(s.ClaimRecent(ctx, mb.ID, 3)); from != 3 {
		t.Errorf("third claim from %d, want 3 (nothing)", from)
	}
	if n := must[uint32](t)(s.UnclaimedRecent(ctx, mb.ID)); n != 0 {
		t.Errorf("unclaimed %d after claims", n)
	}
}

// testSearchFields covers what SEARCH looks in (RFC 3501 6.4.4): TEXT in
// every header field, FROM/TO/CC in the fields as written (display names,
// comments, addresses), HEADER in one field's values, diacritics folded
// (đ→d), as substrings; before and after indexing.
func testSearchFields(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "sf@example.test")[0]
	add := func(raw string) uint32 {
		return must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", []byte(raw), nil, time.Time{})).UID
	}
	u1 := add("From: \"Nguyễn Văn A\" <a@so-tc.example> (Phòng TC)\r\nTo: =?UTF-8?Q?V=C4=83n_th=C6=B0?= <vanthu@example.test>\r\n" +
		"Cc: Trưởng phòng <tp@example.test> (Đội 2)\r\nSubject: Đề nghị cấp kinh phí\r\nX-Phan-Loai: Khẩn\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nĐà Nẵng, ngày 5 tháng 12.\r\n")
	u2 := add("From: b@example.test\r\nTo: sf@example.test\r\nSubject: Thông báo\r\nX-Mailer: Thunderbird 128\r\n\r\nKhông khẩn. Đà-Nẵng và Hà Nội.\r\n")
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	check := func(stage string) {
		t.Helper()
		for _, c := range []struct {
			k    mailstore.TextKey
			want []uint32
		}{
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "khan"}, []uint32{u1, u2}},     // X- header; body
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "thunderbird"}, []uint32{u2}},  // X-Mailer
			{mailstore.TextKey{Field: mailstore.FieldBody, Query: "khẩn"}, []uint32{u2}},         // body only
			{mailstore.TextKey{Field: mailstore.FieldFrom, Query: "Phòng TC"}, []uint32{u1}},     // comment
			{mailstore.TextKey{Field: mailstore.FieldFrom, Query: "nguyen van a"}, []uint32{u1}}, // quoted display name
			{mailstore.TextKey{Field: mailstore.FieldFrom, Query: "a@so-tc.example"}, []uint32{u1}},
			{mailstore.TextKey{Field: mailstore.FieldFrom, Query: "so-tc"}, []uint32{u1}},          // part of the domain
			{mailstore.TextKey{Field: mailstore.FieldFrom, Query: "khan"}, nil},                    // other fields are not From
			{mailstore.TextKey{Field: mailstore.FieldTo, Query: "văn thư"}, []uint32{u1}},          // RFC 2047 display name
			{mailstore.TextKey{Field: mailstore.FieldCc, Query: "doi 2"}, []uint32{u1}},            // comment in Cc
			{mailstore.TextKey{Field: mailstore.FieldCc, Query: "truong ph"}, []uint32{u1}},        // last word a prefix
			{mailstore.TextKey{Field: mailstore.FieldSubject, Query: "DE NGHI"}, []uint32{u1}},     // đ→d, case
			{mailstore.TextKey{Field: mailstore.FieldSubject, Query: "đề nghị cấp"}, []uint32{u1}}, // as written
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "da nang"}, []uint32{u1}},        // "Đà-Nẵng" is another string
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "da-nang"}, []uint32{u2}},
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "hong kha"}, []uint32{u2}}, // inside words
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "nang da"}, nil},           // words out of order
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "ha no"}, []uint32{u2}},
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "ha no "}, nil}, // "no" as a whole word
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "@"}, []uint32{u1, u2}},
			{mailstore.TextKey{Field: mailstore.FieldText, Query: ""}, []uint32{u1, u2}},
			{mailstore.TextKey{Header: "X-Phan-Loai", Query: "khan"}, []uint32{u1}},
			{mailstore.TextKey{Header: "x-phan-loai", Query: ""}, []uint32{u1}},
			{mailstore.TextKey{Header: "X-Mailer", Query: "128"}, []uint32{u2}},
			{mailstore.TextKey{Header: "X-Mailer", Query: "khan"}, nil},
			{mailstore.TextKey{Header: "X-Absent", Query: ""}, nil},
			{mailstore.TextKey{Header: "Subject", Query: ""}, []uint32{u1, u2}},
		} {
			got := must[mailstore.Found](t)(s.Search(ctx, mb.ID, &mailstore.Criteria{Text: []mailstore.TextKey{c.k}})).UIDs
			if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("%s: search %+v = %v, want %v", stage, c.k, got, c.want)
			}
		}
	}
	check("before indexing")
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	check("indexed")
}

// testSearchMalformed: SEARCH finds what a reader of a broken message sees
// (issue 15 defect 9): the fields and body after a header line without a
// colon, a part whose header has one, text after NUL bytes, text nested
// deeper than any limit; and the envelope still has the fields after the
// broken line.
func testSearchMalformed(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "sm@example.test")[0]
	add := func(raw string) uint32 {
		return must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", []byte(raw), nil, time.Time{})).UID
	}
	noColon := add("Subject: one\r\nThis line has no colon\r\nFrom: Trần Thị Bình <binh@example.test>\r\nX Bad Key: khoai\r\n\r\nalpha beta\r\n")
	nul := add("Subject: two\r\n\r\nabc\x00\x00def gamma\x00delta\r\n")
	part := add("Subject: three\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\nbroken line\r\n\r\nepsilon\r\n--X--\r\n")
	deep := "Content-Type: text/plain\r\n\r\nzeta words\r\n"
	for i := range 150 {
		deep = fmt.Sprintf("Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n", i, i, deep, i)
	}
	deepU := add("Subject: four\r\n" + deep)
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	check := func(stage string) {
		t.Helper()
		for _, c := range []struct {
			k    mailstore.TextKey
			want []uint32
		}{
			{mailstore.TextKey{Field: mailstore.FieldBody, Query: "alpha beta"}, []uint32{noColon}},
			{mailstore.TextKey{Field: mailstore.FieldFrom, Query: "tran thi binh"}, []uint32{noColon}},
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "has no colon"}, []uint32{noColon}},
			{mailstore.TextKey{Header: "X Bad Key", Query: "khoai"}, []uint32{noColon}},
			{mailstore.TextKey{Field: mailstore.FieldBody, Query: "gamma"}, []uint32{nul}},
			{mailstore.TextKey{Field: mailstore.FieldBody, Query: "delta"}, []uint32{nul}},
			{mailstore.TextKey{Field: mailstore.FieldBody, Query: "epsilon"}, []uint32{part}},
			{mailstore.TextKey{Field: mailstore.FieldText, Query: "zeta words"}, []uint32{deepU}},
			{mailstore.TextKey{Field: mailstore.FieldBody, Query: "zeta"}, []uint32{deepU}},
		} {
			got := must[mailstore.Found](t)(s.Search(ctx, mb.ID, &mailstore.Criteria{Text: []mailstore.TextKey{c.k}})).UIDs
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: search %+v = %v, want %v", stage, c.k, got, c.want)
			}
		}
	}
	check("before indexing")
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	check("indexed")
	var env *mailstore.Envelope
	err := s.FetchChanged(ctx, mb.ID, []uint32{noColon}, 0, mailstore.FetchEnvelope, func(it mailstore.Item) error {
		env = it.Envelope
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if env == nil || len(env.From) != 1 || env.From[0].Name != "Trần Thị Bình" || env.Subject != "one" {
		t.Errorf("envelope after a line without a colon: %+v", env)
	}
}

// testSearchCriteria combines text keys with the other criteria, as one
// query answers them.
func testSearchCriteria(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "sc@example.test")[0]
	var uids []uint32
	for i := 0; i < 20; i++ {
		body := "Báo cáo tuần"
		if i%4 == 0 {
			body = "Công văn Đà Nẵng số " + fmt.Sprint(i)
		}
		date := time.Date(2026, 11, 1+i, 12, 0, 0, 0, time.Local)
		d := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@example.test", "sc@example.test", fmt.Sprint("Tin ", i), body), nil, date))
		uids = append(uids, d.UID)
	}
	mb := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "INBOX"))
	must[[]mailstore.Message](t)(s.StoreFlags(ctx, mb.ID, uids[:10], mailstore.FlagsAdd, []string{`\Seen`, "Gấp"}))
	nang := mailstore.TextKey{Field: mailstore.FieldBody, Query: "đà nẵng"}
	check := func(stage string) {
		t.Helper()
		for _, c := range []struct {
			name string
			c    mailstore.Criteria
			want []uint32
		}{
			{"text", mailstore.Criteria{Text: []mailstore.TextKey{nang}}, []uint32{1, 5, 9, 13, 17}},
			{"text unseen", mailstore.Criteria{Text: []mailstore.TextKey{nang}, NotFlags: []string{`\Seen`}}, []uint32{13, 17}},
			{"text keyword", mailstore.Criteria{Text: []mailstore.TextKey{nang}, Flags: []string{"gấp"}}, []uint32{1, 5, 9}},
			{"not text", mailstore.Criteria{UIDs: [][]mailstore.UIDRange{{{First: 1, Last: 8}}}, Not: []mailstore.Criteria{{Text: []mailstore.TextKey{nang}}}}, []uint32{2, 3, 4, 6, 7, 8}},
			{"or", mailstore.Criteria{Or: [][2]mailstore.Criteria{{{Text: []mailstore.TextKey{nang}}, {UIDs: [][]mailstore.UIDRange{{{First: 20, Last: 20}}}}}}}, []uint32{1, 5, 9, 13, 17, 20}},
			{"since before", mailstore.Criteria{Text: []mailstore.TextKey{nang}, Since: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), Before: time.Date(2026, 11, 14, 0, 0, 0, 0, time.UTC)}, []uint32{5, 9, 13}},
			{"sent", mailstore.Criteria{SentSince: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), SentBefore: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)}, uids},
			{"uid sets", mailstore.Criteria{UIDs: [][]mailstore.UIDRange{{{First: 1, Last: 10}}, {{First: 9, Last: 20}}}}, []uint32{9, 10}},
		} {
			got := must[mailstore.Found](t)(s.Search(ctx, mb.ID, &c.c)).UIDs
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: %s: %v, want %v", stage, c.name, got, c.want)
			}
		}
	}
	check("before indexing")
	if err := s.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	check("indexed")
	// Thousands of NOTs in a row cancel out; ORs nested past any real use
	// are refused as invalid, not failed as a server error.
	deep := mailstore.Criteria{Text: []mailstore.TextKey{nang}}
	for range 5001 {
		deep = mailstore.Criteria{Not: []mailstore.Criteria{deep}}
	}
	if got := must[mailstore.Found](t)(s.Search(ctx, mb.ID, &deep)).UIDs; len(got) != 15 || slices.Contains(got, 1) {
		t.Errorf("5001 NOTs: %v", got)
	}
	deep = mailstore.Criteria{}
	for range 1000 {
		deep = mailstore.Criteria{Or: [][2]mailstore.Criteria{{deep, {}}}}
	}
	if _, err := s.Search(ctx, mb.ID, &deep); !errors.Is(err, mailstore.ErrInvalid) {
		t.Errorf("1000 nested ORs: %v", err)
	}
}

// testInternalDateZone: an internal date keeps its zone through copies, and
// SINCE/BEFORE take its day in that zone (schema/0014).
func testInternalDateZone(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	a := Setup(t, s, "tz@example.test")[0]
	eet := time.FixedZone("", 2*3600)
	d := must[mailstore.Delivered](t)(s.Append(ctx, a.ID, "INBOX", Msg("x@example.test", "tz@example.test", "tz", "b"), nil, time.Date(2007, 3, 25, 0, 30, 0, 0, eet)))
	must[mailstore.Mailbox](t)(s.CreateMailbox(ctx, a.ID, "Lưu", ""))
	dst := must[mailstore.Mailbox](t)(s.Mailbox(ctx, a.ID, "Lưu"))
	if _, _, err := s.Copy(ctx, d.MailboxID, []uint32{d.UID}, dst.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{d.MailboxID, dst.ID} {
		msgs := must[[]mailstore.Message](t)(s.Messages(ctx, id))
		if len(msgs) != 1 || msgs[0].InternalDate.Format(time.RFC3339) != "2007-03-25T00:30:00+02:00" {
			t.Errorf("mailbox %d: internal date %v", id, msgs)
		}
		day := func(y, m, dd int) time.Time { return time.Date(y, time.Month(m), dd, 0, 0, 0, 0, time.UTC) }
		if f := must[mailstore.Found](t)(s.Search(ctx, id, &mailstore.Criteria{Since: day(2007, 3, 25), Before: day(2007, 3, 26)})); len(f.UIDs) != 1 {
			t.Errorf("mailbox %d: ON 25-Mar-2007 found %v", id, f.UIDs)
		}
		if f := must[mailstore.Found](t)(s.Search(ctx, id, &mailstore.Criteria{Before: day(2007, 3, 25)})); len(f.UIDs) != 0 {
			t.Errorf("mailbox %d: BEFORE 25-Mar-2007 found %v", id, f.UIDs)
		}
	}
}
