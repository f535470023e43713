package imapd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/internal/testtool"
	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestNeomutt drives neomutt, a terminal client, against a Vietnamese
// mailbox: it opens INBOX over implicit TLS, limits it with a server-side
// search ("nẵng" finds "Đà Nẵng"), reads the found message, flags it, saves
// it to a folder with a Vietnamese name (found by LIST, and deleting it
// from INBOX) and quits, expunging.
// neomutt needs a terminal: script(1) gives it one.
func TestNeomutt(t *testing.T) {
	neomutt := testtool.Path(t, "neomutt", "neomutt")
	script := testtool.Path(t, "script", "bsdutils")
	e := newEnv(t)
	a := e.accts[0]
	ctx := context.Background()
	if _, err := e.store.CreateMailbox(ctx, a.ID, "Văn_thư/Đến", ""); err != nil {
		t.Fatal(err)
	}
	e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", "Lịch họp tuần", "Họp giao ban sáng thứ Hai"))
	e.deliver(t, a, "", storetest.Msg("b@b.test", "nam@example.test", "Công văn về Đà Nẵng", "Kính gửi các phòng ban"))
	e.deliver(t, a, "", storetest.Msg("c@b.test", "nam@example.test", "Báo cáo quý", "Số liệu"))

	dir := t.TempDir()
	rc := filepath.Join(dir, "muttrc")
	err := os.WriteFile(rc, []byte(`set imap_user = "nam@example.test"
set imap_pass = "pw"
set certificate_file = "`+e.certFile+`"
set ssl_force_tls = yes
set folder = "imaps://127.0.0.1:`+port(e.tls)+`/"
set spoolfile = "+INBOX"
set header_cache = ""
set message_cachedir = ""
set mail_check = 0
set imap_keepalive = 0
set confirmappend = no
set confirmcreate = no
set delete = yes
set move = no
set wait_key = no
set sort = date
set charset = "utf-8"
set pager_stop = yes
set mark_old = no
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	keys := `<limit>=s nẵng<enter>` + // server-side SEARCH
		`<display-message><exit>` + // read: BODY[] sets \Seen
		`<flag-message>` +
		`<save-message>=Văn_thư/Đến<enter>` +
		`<sync-mailbox><quit>`
	log := filepath.Join(dir, "neomutt.log")
	cmdline := neomutt + " -n -F " + rc + " -d 2 -l " + log + ` -e 'push "` + keys + `"'`
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, script, "-qec", cmdline, "/dev/null")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "TERM=xterm", "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		l, _ := os.ReadFile(log + "0")
		t.Fatalf("neomutt: %v\n%s\nlog:\n%s", err, tail(out), tail(l))
	}

	vb, err := e.store.Mailbox(ctx, a.ID, "Văn_thư/Đến")
	if err != nil {
		t.Fatal(err)
	}
	var moved []mailstore.Item
	e.store.Fetch(ctx, vb.ID, nil, mailstore.FetchEnvelope, func(it mailstore.Item) error { moved = append(moved, it); return nil })
	if len(moved) != 1 || moved[0].Envelope.Subject != "Công văn về Đà Nẵng" ||
		!slices.Contains(moved[0].Flags, `\Flagged`) || !slices.Contains(moved[0].Flags, `\Seen`) {
		l, _ := os.ReadFile(log + "0")
		t.Fatalf("Văn_thư/Đến after neomutt: %+v\nlog:\n%s", moved, tail(l))
	}
	inbox, err := e.store.Mailbox(ctx, a.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := e.store.Messages(ctx, inbox.ID)
	if err != nil || len(msgs) != 2 {
		t.Errorf("INBOX after the move: %+v %v", msgs, err)
	}
	for _, m := range msgs {
		if slices.Contains(m.Flags, `\Seen`) || slices.Contains(m.Flags, `\Flagged`) {
			t.Errorf("a message neomutt did not touch changed: %+v", m)
		}
	}
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 6000 {
		s = "…" + s[len(s)-6000:]
	}
	return strings.ToValidUTF8(s, "?")
}
