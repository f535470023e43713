package imapd

import (
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

func TestID(t *testing.T) {
	e := newEnv(t)
	// ID is valid, and advertised, before login.
	c, err := imapclient.DialTLS(e.tls, &imapclient.Options{TLSConfig: e.client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if caps := must[imap.CapSet](t)(c.Capability().Wait()); !caps.Has(imap.CapID) || caps.Has(imap.CapQuota) {
		t.Errorf("capabilities before login: %v", caps)
	}
	for _, client := range []*imap.IDData{{Name: "Thunderbird", Version: "128.0", OS: "Linux"}, nil} {
		got := must[*imap.IDData](t)(c.ID(client).Wait())
		if *got != (imap.IDData{Name: "sealmail"}) {
			t.Errorf("ID %+v: server sent %+v", client, got)
		}
	}
	if err := c.Login("nam@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if got := must[*imap.IDData](t)(c.ID(&imap.IDData{Name: "x"}).Wait()); got.Name != "sealmail" {
		t.Errorf("ID after login: %+v", got)
	}

	// The exact bytes, with field names in another case, NIL values,
	// unknown fields and an empty list, which imapclient never sends.
	r := e.raw(t)
	for _, args := range []string{`("NAME" "Outlook" "os" NIL "x-build" "7")`, `NIL`, `()`} {
		lines, status := r.cmd("ID " + args)
		if len(lines) != 1 || lines[0] != `* ID ("name" "sealmail")` || !strings.HasPrefix(status, "OK") {
			t.Errorf("ID %s: %q %q", args, lines, status)
		}
	}
	if _, status := r.cmd(`ID ("name")`); !strings.HasPrefix(status, "BAD") {
		t.Errorf("ID with a key and no value: %q", status)
	}
}

func TestQuota(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The limit is not a whole number of KiB: it is rounded down.
	if err := e.store.SetQuota(ctx, "nam@example.test", 3000*1024+500); err != nil {
		t.Fatal(err)
	}
	c := e.dial(t, "nam", nil)
	caps := must[imap.CapSet](t)(c.Capability().Wait())
	if !caps.Has(imap.CapQuota) || !caps.Has("QUOTA=RES-STORAGE") || !caps.Has(imap.CapID) || caps.Has(imap.CapQuotaSet) {
		t.Errorf("capabilities: %v", caps)
	}
	if types := caps.QuotaResourceTypes(); len(types) != 1 || types[0] != imap.QuotaResourceStorage {
		t.Errorf("quota resources %v", types)
	}

	storage := func(data []imapclient.QuotaData) imapclient.QuotaResourceData {
		t.Helper()
		if len(data) != 1 || data[0].Root != "" || len(data[0].Resources) != 1 {
			t.Fatalf("quota %+v", data)
		}
		return data[0].Resources[imap.QuotaResourceStorage]
	}
	if got := storage(must[[]imapclient.QuotaData](t)(c.GetQuotaRoot("INBOX").Wait())); got != (imapclient.QuotaResourceData{Usage: 0, Limit: 3000}) {
		t.Errorf("empty account: %+v", got)
	}

	// 2049 bytes take 3 KiB: a started unit counts. The same connection sees
	// the delivery, so the account is read for each command.
	msg := storetest.Msg("a@example.test", "nam@example.test", "hi", "")
	msg = append(msg, strings.Repeat("x", 2049-len(msg))...)
	e.deliver(t, e.accts[0], mailstore.Inbox, msg)
	acct := must[mailstore.Account](t)(e.store.Account(ctx, "nam@example.test"))
	if acct.Used != 2049 {
		t.Fatalf("store counts %d bytes for a 2049-byte message", acct.Used)
	}
	want := imapclient.QuotaResourceData{Usage: 3, Limit: 3000}
	if got := storage(must[[]imapclient.QuotaData](t)(c.GetQuotaRoot("INBOX").Wait())); got != want {
		t.Errorf("GETQUOTAROOT INBOX after delivery: %+v, want %+v", got, want)
	}
	// The mailbox need not exist (RFC 9208): the quota would cover it.
	if got := storage(must[[]imapclient.QuotaData](t)(c.GetQuotaRoot("Dự án/mới").Wait())); got != want {
		t.Errorf("GETQUOTAROOT of a missing mailbox: %+v", got)
	}
	q := must[*imapclient.QuotaData](t)(c.GetQuota("").Wait())
	if got := storage([]imapclient.QuotaData{*q}); got != want {
		t.Errorf(`GETQUOTA "": %+v`, got)
	}
	if _, err := c.GetQuota("nam").Wait(); !isCode(err, imap.ResponseCodeNonExistent) {
		t.Errorf("GETQUOTA of an unknown root: %v", err)
	}

	// Quotas are the administrator's: SETQUOTA is refused and changes nothing.
	err := c.SetQuota("", map[imap.QuotaResourceType]int64{imap.QuotaResourceStorage: 1 << 30}).Wait()
	if !isCode(err, imap.ResponseCodeNoPerm) {
		t.Errorf("SETQUOTA: %v", err)
	}
	if a := must[mailstore.Account](t)(e.store.Account(ctx, "nam@example.test")); a.Quota != 3000*1024+500 {
		t.Errorf("quota after SETQUOTA: %d", a.Quota)
	}

	// QUOTA=RES-STORAGE brings the STATUS item DELETED-STORAGE, in octets.
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	status := func() int64 {
		t.Helper()
		st := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{DeletedStorage: true}).Wait())
		if st.DeletedStorage == nil {
			t.Fatal("no DELETED-STORAGE")
		}
		return *st.DeletedStorage
	}
	if n := status(); n != 0 {
		t.Errorf("DELETED-STORAGE with nothing deleted: %d", n)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if n := status(); n != 2049 {
		t.Errorf("DELETED-STORAGE: %d, want 2049", n)
	}

	// The exact bytes.
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	lines, st := r.cmd("GETQUOTAROOT INBOX")
	if strings.Join(lines, "\n") != "* QUOTAROOT INBOX \"\"\n* QUOTA \"\" (STORAGE 3 3000)" || !strings.HasPrefix(st, "OK") {
		t.Errorf("GETQUOTAROOT: %q %q", lines, st)
	}
	if _, st := r.cmd("SETQUOTA \"\" (STORAGE"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("malformed SETQUOTA: %q", st)
	}
}

func TestQuotaUnlimited(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[1], mailstore.Inbox, storetest.Msg("a@example.test", "lan@example.test", "hi", "body"))
	c := e.dial(t, "lan", nil)
	// No limit, no quota root (RFC 9208): a QUOTA response must list a limit.
	if data := must[[]imapclient.QuotaData](t)(c.GetQuotaRoot("INBOX").Wait()); len(data) != 0 {
		t.Errorf("GETQUOTAROOT of an unlimited account: %+v", data)
	}
	if _, err := c.GetQuota("").Wait(); !isCode(err, imap.ResponseCodeNonExistent) {
		t.Errorf(`GETQUOTA "" of an unlimited account: %v`, err)
	}
	r := e.raw(t)
	r.cmd("LOGIN lan@example.test pw")
	if lines, st := r.cmd("GETQUOTAROOT INBOX"); len(lines) != 1 || lines[0] != "* QUOTAROOT INBOX" || !strings.HasPrefix(st, "OK") {
		t.Errorf("GETQUOTAROOT: %q %q", lines, st)
	}
	if _, st := r.cmd(`GETQUOTA ""`); !strings.HasPrefix(st, "NO [NONEXISTENT]") {
		t.Errorf("GETQUOTA: %q", st)
	}
}
