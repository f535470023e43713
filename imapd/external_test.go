package imapd

import (
	"context"
	"net"
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

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestCurl(t *testing.T) {
	curl := testtool.Path(t, "curl", "curl")
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", storetest.Msg("a@b.test", "nam@example.test", "Chào buổi sáng", "Nội dung thư"))
	dir := t.TempDir()
	base := "imaps://127.0.0.1:" + port(e.tls)
	auth := []string{"-sS", "--cacert", e.certFile, "-u", "nam@example.test:pw"}

	list := run(t, dir, curl, append(auth, base+"/")...)
	for _, want := range []string{`"INBOX"`, `\Sent`, `\HasNoChildren`} {
		if !strings.Contains(list, want) && !strings.Contains(list, strings.Trim(want, `"`)) {
			t.Errorf("curl LIST lacks %s:\n%s", want, list)
		}
	}
	body := run(t, dir, curl, append(auth, base+"/INBOX;UID=1")...)
	if !strings.Contains(body, "Nội dung thư") || !strings.Contains(body, "Subject: Chào buổi sáng") {
		t.Errorf("curl fetch:\n%s", body)
	}
	// STARTTLS on the cleartext port, required by --ssl-reqd.
	search := run(t, dir, curl, append(auth, "--ssl-reqd", "-X", "SEARCH SUBJECT chao", "imap://127.0.0.1:"+port(e.plain)+"/INBOX")...)
	if !strings.Contains(search, "SEARCH 1") {
		t.Errorf("curl SEARCH over STARTTLS: %q", search)
	}
}

func TestPythonImaplib(t *testing.T) {
	py := testtool.Path(t, "python3", "python3")
	e := newEnv(t)
	a := e.accts[0]
	e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", "Công văn Đà Nẵng", "Kính gửi"))
	e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", "Họp", "Lịch họp"))
	dir := t.TempDir()
	script := filepath.Join(dir, "client.py")
	err := os.WriteFile(script, []byte(`
import imaplib, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
assert "LOGINDISABLED" in m.capabilities, m.capabilities
m.starttls(ssl_context=ctx)
m.login("nam@example.test", "pw")
# imaplib checks the capabilities it read before login.
typ, data = m.enable("UTF8=ACCEPT")
assert typ == "OK", (typ, data)
typ, data = m.create('"Văn bản đến"')
assert typ == "OK", (typ, data)
typ, data = m.list('""', '"Văn*"')
assert typ == "OK" and data == ['(\\HasNoChildren) "/" "Văn bản đến"'.encode()], data
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"2", data
typ, data = m.search(None, "TEXT", '"da nang"')
assert data[0] == b"1", data
typ, data = m.fetch("1", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert typ == "OK" and b"Subject:" in data[0][1], data
typ, data = m.uid("MOVE", "1", "Archive")
assert typ == "OK", (typ, data)
msg = b"From: py@example.test\r\nSubject: from python\r\n\r\nhello\r\n"
typ, data = m.append("Archive", "(\\Seen)", imaplib.Time2Internaldate(time.time()), msg)
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = m.select("INBOX")
assert data[0] == b"1", data
m.logout()
print("ok")
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, dir, py, script, port(e.plain), e.certFile); !strings.Contains(out, "ok") {
		t.Fatalf("python: %s", out)
	}
	archive, err := e.store.Mailbox(context.Background(), a.ID, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := e.store.Messages(context.Background(), archive.ID)
	if err != nil || len(msgs) != 2 || !slices.Contains(msgs[1].Flags, `\Seen`) {
		t.Errorf("Archive after python: %+v %v", msgs, err)
	}
}

func TestMbsync(t *testing.T) {
	mbsync := testtool.Path(t, "mbsync", "isync")
	e := newEnv(t)
	a := e.accts[0]
	ctx := context.Background()
	for _, box := range []string{"Văn bản đến", "Văn bản đến/2026"} {
		if _, err := e.store.CreateMailbox(ctx, a.ID, box, ""); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := e.store.Deliver(ctx, storetest.Msg("a@b.test", "nam@example.test", "Quyết định số 12", "Nội dung"), time.Time{},
		[]mailstore.Target{{AccountID: a.ID, Mailbox: "Văn bản đến/2026", Flags: []string{`\Seen`}}})
	if err != nil || ds[0].Err != nil {
		t.Fatal(err, ds)
	}
	e.deliver(t, a, "", storetest.Msg("a@b.test", "nam@example.test", "Inbox mail", "x"))

	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	if err := os.Mkdir(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "mbsyncrc")
	err = os.WriteFile(conf, []byte(`IMAPAccount test
Host 127.0.0.1
Port `+port(e.tls)+`
User nam@example.test
Pass pw
SSLType IMAPS
CertificateFile `+e.certFile+`

IMAPStore remote
Account test

MaildirStore local
Path `+mail+`/
Inbox `+mail+`/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Near
Sync All
SyncState *
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	run(t, dir, mbsync, "-c", conf, "-a")

	// isync before 1.5 keeps the modified UTF-7 of rev1 IMAP as the folder's
	// name; later ones ask for UTF-8.
	var files []string
	for _, folder := range []string{"Văn bản đến", "V&AQM-n b&HqM-n &AREevw-n"} {
		if f, _ := filepath.Glob(filepath.Join(mail, folder, "2026", "cur", "*")); len(f) > 0 {
			files = f
		}
	}
	if len(files) != 1 {
		all, _ := filepath.Glob(filepath.Join(mail, "*", "*"))
		t.Fatalf("synced Maildir has %d messages in Văn bản đến/2026; tree: %v", len(files), all)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "Quyết định số 12") {
		t.Errorf("synced message: %s", b)
	}
	if inbox, _ := filepath.Glob(filepath.Join(mail, "INBOX", "new", "*")); len(inbox) != 1 {
		t.Errorf("INBOX new has %d messages", len(inbox))
	}

	// Flag the message locally and push the change back.
	if !strings.HasSuffix(files[0], ",S") {
		t.Fatalf("unexpected Maildir name %s", files[0])
	}
	if err := os.Rename(files[0], strings.TrimSuffix(files[0], "S")+"FS"); err != nil {
		t.Fatal(err)
	}
	run(t, dir, mbsync, "-c", conf, "-a")
	msgs, err := e.store.Messages(ctx, ds[0].MailboxID)
	if err != nil || len(msgs) != 1 || !slices.Contains(msgs[0].Flags, `\Flagged`) {
		t.Errorf("flag not pushed back: %+v %v", msgs, err)
	}
}
