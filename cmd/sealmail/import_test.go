package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"sealmail/internal/dovecottest"
	"sealmail/mailstore"
)

// countMessages returns how many messages each folder of address holds.
func countMessages(t *testing.T, data, address string) map[string]int {
	t.Helper()
	s := openStore(t, data)
	defer s.Close()
	ctx := context.Background()
	a, err := s.Account(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	mbs, err := s.Mailboxes(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mb := range mbs {
		st, err := s.MailboxStatus(ctx, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Messages > 0 {
			out[mb.Name] = int(st.Messages)
		}
	}
	return out
}

// appendN appends n messages of about size bytes to folder of user on d,
// pipelined.
func appendN(t *testing.T, d *dovecottest.Server, user, folder string, n, size int) {
	t.Helper()
	c := d.Dial(t, user)
	if folder != "INBOX" {
		if err := c.Create(folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	cmds := make([]interface {
		Wait() (*imap.AppendData, error)
	}, n)
	for i := range n {
		msg := fmt.Sprintf("From: a@old.example.vn\r\nSubject: Thư số %d\r\nMessage-ID: <%d@old.example.vn>\r\n\r\n%s\r\n",
			i, i, strings.Repeat("Nội dung thư. ", size/16))
		cmd := c.Append(folder, int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
		cmd.Write([]byte(msg))
		cmd.Close()
		cmds[i] = cmd
	}
	for _, cmd := range cmds {
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImportIMAPCommand(t *testing.T) {
	dv := dovecottest.Start(t)
	appendN(t, dv, "anna", "INBOX", 3, 200)
	appendN(t, dv, "anna", "Công văn", 2, 200)
	data := setupData(t)
	ok(t, "", "user", "add", "anna@agency.example", "--data", data)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte(dovecottest.Password+"\n"), 0o600)
	args := []string{"import", "imap", "--from", dv.URL(), "--user", "anna", "--password-file", pw,
		"--to", "anna@agency.example", "--tls-ca", dv.CAFile, "--data", data}

	out := ok(t, "", args...)
	if !strings.Contains(out, "anna@agency.example: 3 folders, 5 messages copied") {
		t.Errorf("first run printed %q; want 3 folders (INBOX, Công văn, Dovecot's %s), 5 messages", out, dovecottest.SentName)
	}
	want := map[string]int{"INBOX": 3, "Công văn": 2}
	if got := countMessages(t, data, "anna@agency.example"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the first run: %v, want %v", got, want)
	}
	out = ok(t, "", args...)
	if !strings.Contains(out, "0 messages copied (0 B), 5 skipped") {
		t.Errorf("second run printed %q; want nothing copied, 5 skipped", out)
	}

	// Without the old server's CA, its certificate is refused.
	noCA := withoutFlag(args, "--tls-ca", dv.CAFile)
	fails(t, "", noCA, "certificate")
	// --insecure accepts it, saying so.
	r := sealmail(t, "", append(noCA, "--insecure")...)
	if r.code != 0 || !strings.Contains(r.stderr, "not checking the certificate") {
		t.Errorf("--insecure: exit %d, stderr %q", r.code, r.stderr)
	}
	fails(t, "", []string{"import", "imap", "--from", dv.URL(), "--user", "anna", "--password-file", pw,
		"--to", "nobody@agency.example", "--tls-ca", dv.CAFile, "--data", data}, "no account nobody@agency.example", "sealmail user add")
	fails(t, "", []string{"import", "imap", "--from", dv.URL(), "--to", "anna@agency.example", "--data", data}, "--user")
}

// withoutFlag returns args without the flag name and its value.
func withoutFlag(args []string, name, value string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == name && i+1 < len(args) && args[i+1] == value {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// TestImportIMAPKilled kills an import with SIGKILL once it has copied some
// messages, then runs it again: every message arrives once.
func TestImportIMAPKilled(t *testing.T) {
	dv := dovecottest.Start(t)
	const n = 80
	start := time.Now()
	appendN(t, dv, "anna", "INBOX", n, 4<<10)
	t.Logf("filled in %v", time.Since(start))
	data := setupData(t)
	ok(t, "", "user", "add", "anna@agency.example", "--data", data)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte(dovecottest.Password), 0o600)
	args := []string{"import", "imap", "--from", dv.URL(), "--user", "anna", "--password-file", pw,
		"--to", "anna@agency.example", "--tls-ca", dv.CAFile, "--data", data}

	cmd := cmdFor(t, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, data)
	ctx := context.Background()
	a, err := s.Account(ctx, "anna@agency.example")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(ctx, a.ID, mailstore.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the first messages, then kill.
	var copied uint32
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for copied == 0 {
		select {
		case err := <-done:
			t.Fatalf("the import ended before it was killed: %v", err)
		default:
		}
		st, err := s.MailboxStatus(ctx, inbox.ID)
		if err != nil {
			t.Fatal(err)
		}
		copied = st.Messages
	}
	cmd.Process.Kill()
	<-done
	st, _ := s.MailboxStatus(ctx, inbox.ID)
	t.Logf("killed after %d of %d messages", st.Messages, n)

	start = time.Now()
	out := ok(t, "", args...)
	t.Logf("resumed in %v", time.Since(start))
	if !strings.Contains(out, fmt.Sprintf("%d messages copied", n-int(st.Messages))) {
		t.Errorf("the run after the kill printed %q; want %d messages copied", out, n-int(st.Messages))
	}
	if got := countMessages(t, data, "anna@agency.example"); got["INBOX"] != n {
		t.Errorf("INBOX holds %d messages, want %d", got["INBOX"], n)
	}
}

func TestImportAccountsCSV(t *testing.T) {
	data := setupData(t)
	dir := t.TempDir()
	mbox := "From a@old Sat Mar  2 09:15:00 2024\nSubject: một\nStatus: RO\n\nThư một.\n\n" +
		"From a@old Sat Mar  2 09:16:00 2024\nSubject: hai\n\nThư hai.\n\n"
	for _, u := range []string{"an", "binh"} {
		ok(t, "", "user", "add", u+"@agency.example", "--data", data)
		os.WriteFile(filepath.Join(dir, u+".mbox"), []byte(mbox), 0o600)
	}
	csvFile := filepath.Join(dir, "accounts.csv")
	os.WriteFile(csvFile, []byte("to,file\nan@agency.example,"+filepath.Join(dir, "an.mbox")+"\nbinh@agency.example,"+filepath.Join(dir, "binh.mbox")+"\n"), 0o600)
	out := ok(t, "", "import", "mbox", "--accounts", csvFile, "--folder", "Lưu trữ", "--data", data)
	for _, w := range []string{"an@agency.example: 1 folders, 2 messages copied", "binh@agency.example: 1 folders, 2 messages copied", "all 2 accounts: 2 folders, 4 messages copied"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, u := range []string{"an", "binh"} {
		if got := countMessages(t, data, u+"@agency.example"); got["Lưu trữ"] != 2 {
			t.Errorf("%s: %v, want 2 messages in Lưu trữ", u, got)
		}
	}

	// One account failing does not stop the others, and the run says which.
	os.WriteFile(csvFile, []byte("to,file\nghost@agency.example,"+filepath.Join(dir, "an.mbox")+"\nbinh@agency.example,"+filepath.Join(dir, "binh.mbox")+"\n"), 0o600)
	r := sealmail(t, "", "import", "mbox", "--accounts", csvFile, "--folder", "Lưu trữ", "--data", data)
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 2 accounts not fully imported (ghost@agency.example)") ||
		!strings.Contains(r.stdout, "binh@agency.example: 1 folders, 0 messages copied (0 B), 2 skipped") {
		t.Errorf("a run with an unknown account: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	os.WriteFile(csvFile, []byte("to,mailbox\nan@agency.example,x\n"), 0o600)
	fails(t, "", []string{"import", "mbox", "--accounts", csvFile, "--data", data}, `unknown column "mailbox"`, "to, file, folder")
	os.WriteFile(csvFile, []byte("to,user,password\nan@agency.example,an,secret\n"), 0o644)
	os.Chmod(csvFile, 0o644)
	fails(t, "", []string{"import", "imap", "--from", "imaps://127.0.0.1:1", "--accounts", csvFile, "--data", data}, "holds passwords but others may read it")
}

func TestExportCommands(t *testing.T) {
	data := setupData(t)
	dir := t.TempDir()
	ok(t, "", "user", "add", "an@agency.example", "--data", data)
	ok(t, "", "user", "add", "binh@agency.example", "--data", data)
	mbox := filepath.Join(dir, "in.mbox")
	os.WriteFile(mbox, []byte("From a@old Sat Mar  2 09:15:00 2024\nSubject: một\nStatus: RO\nX-Keywords: $Label1\n\nThư một.\n>From here\n\n"), 0o600)
	ok(t, "", "import", "mbox", mbox, "--to", "an@agency.example", "--folder", "Công văn/2024", "--data", data)

	md := filepath.Join(dir, "Maildir")
	out := ok(t, "", "export", "maildir", "an@agency.example", md, "--data", data)
	if !strings.Contains(out, "1 messages") {
		t.Errorf("export maildir printed %q", out)
	}
	files, _ := filepath.Glob(filepath.Join(md, ".C&APQ-ng v&AQM-n.2024", "cur", "*:2,Sa"))
	if len(files) != 1 {
		t.Errorf("export maildir: want one file with info :2,Sa in .C&APQ-ng v&AQM-n.2024/cur, have %v", files)
	}
	ok(t, "", "import", "maildir", md, "--to", "binh@agency.example", "--data", data)
	if got := countMessages(t, data, "binh@agency.example"); got["Công văn/2024"] != 1 {
		t.Errorf("binh after importing the export: %v", got)
	}
	fails(t, "", []string{"export", "maildir", "an@agency.example", md, "--data", data}, "not empty")

	out1 := filepath.Join(dir, "out.mbox")
	ok(t, "", "export", "mbox", "an@agency.example", out1, "--folder", "Công văn/2024", "--data", data)
	b, _ := os.ReadFile(out1)
	if !strings.Contains(string(b), "\nX-Keywords: $Label1\n") || !strings.Contains(string(b), "\n>From here\n") {
		t.Errorf("exported mbox:\n%s", b)
	}
	fails(t, "", []string{"export", "mbox", "an@agency.example", filepath.Join(dir, "x.mbox"), "--folder", "Nowhere", "--data", data}, `no folder "Nowhere"`)
}
