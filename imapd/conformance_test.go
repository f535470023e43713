package imapd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// Regression tests for what protocol test suites and demanding clients found
// (issue 12). Raw protocol where the client library would hide the wire.

func hasStatus(t *testing.T, st, want string) {
	t.Helper()
	if !strings.HasPrefix(st, want) {
		t.Fatalf("status %q, want %s", st, want)
	}
}

func TestCapabilitiesBeforeLogin(t *testing.T) {
	e := newEnv(t)
	r := e.raw(t)
	lines, st := r.cmd("CAPABILITY")
	hasStatus(t, st, "OK")
	pre := capList(t, lines)
	for _, want := range []string{"IMAP4rev1", "IMAP4rev2", "ENABLE", "IDLE", "LITERAL+", "UTF8=ACCEPT", "ID", "SASL-IR",
		"AUTH=PLAIN", "UNAUTHENTICATE", "SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "CONDSTORE"} {
		if !pre[want] {
			t.Errorf("not advertised before login: %s (%v)", want, lines)
		}
	}
	// Nothing about the account before login.
	for _, not := range []string{"QUOTA", "APPENDLIMIT=52428800", "LITERAL-"} {
		if pre[not] {
			t.Errorf("advertised before login: %s", not)
		}
	}
	_, st = r.cmd("LOGIN nam@example.test pw")
	hasStatus(t, st, "OK")
	lines, _ = r.cmd("CAPABILITY")
	post := capList(t, lines)
	for c := range pre {
		if !post[c] && !strings.HasPrefix(c, "AUTH=") {
			t.Errorf("advertised before login but not after: %s", c)
		}
	}
	for _, want := range []string{"QUOTA", "APPENDLIMIT=52428800", "UNSELECT", "MOVE", "BINARY", "LIST-EXTENDED"} {
		if !post[want] {
			t.Errorf("not advertised after login: %s", want)
		}
	}
	lines, st = r.cmd("ENABLE UTF8=ACCEPT")
	if len(lines) != 1 || lines[0] != "* ENABLED UTF8=ACCEPT" {
		t.Errorf("ENABLE: %q %s", lines, st)
	}
}

func capList(t *testing.T, lines []string) map[string]bool {
	t.Helper()
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "CAPABILITY" {
			m := map[string]bool{}
			for _, c := range f[2:] {
				m[c] = true
			}
			return m
		}
	}
	t.Fatalf("no CAPABILITY in %q", lines)
	return nil
}

func TestUnauthenticate(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t, "nam", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unauthenticate().Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.List("", "*", nil).Collect(); err == nil {
		t.Error("LIST after UNAUTHENTICATE succeeded")
	}
	if err := c.Login("lan@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Riêng của Lan", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Mailbox(t.Context(), e.accts[1].ID, "Riêng của Lan"); err != nil {
		t.Errorf("second login's CREATE not in lan's account: %v", err)
	}

	// On the wire: UNAUTHENTICATE, then commands of the not-authenticated state only.
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	_, st := r.cmd("UNAUTHENTICATE")
	hasStatus(t, st, "OK")
	_, st = r.cmd("FETCH 1 FLAGS")
	hasStatus(t, st, "BAD")
	lines, _ := r.cmd("CAPABILITY")
	if caps := capList(t, lines); !caps["AUTH=PLAIN"] || caps["QUOTA"] {
		t.Errorf("capabilities after UNAUTHENTICATE: %q", lines)
	}
	_, st = r.cmd("LOGIN lan@example.test pw")
	hasStatus(t, st, "OK")
}

func TestMoveResponseText(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", []byte("Subject: a\r\n\r\nx\r\n"))
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	lines, st := r.cmd("MOVE 1 Archive")
	hasStatus(t, st, "OK")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "* OK [COPYUID ") || strings.Contains(lines[0], "COPY completed") ||
		!strings.Contains(lines[0], "MOVE") || lines[1] != "* 1 EXPUNGE" {
		t.Errorf("MOVE responses: %q", lines)
	}
}

func TestFetchBinaryPartial(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", []byte("Subject: a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCông văn\r\nsố 12\r\n"))
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	// The partial crosses a line break: it must go as a literal, with its origin.
	lines, st := r.cmd("FETCH 1 (BINARY.PEEK[1]<3.10>)")
	hasStatus(t, st, "OK")
	want := []string{"* 1 FETCH (UID 1 BINARY[1]<3> ~{10}", "ng văn", "s)"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("partial BINARY: %q, want %q", lines, want)
	}

	c := e.dial(t, "nam", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBinarySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 3, Size: 10}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{section}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	if got := string(msgs[0].FindBinarySection(section)); got != "ng văn\r\ns" {
		t.Errorf("imapclient partial BINARY: %q", got)
	}
}

func TestEnvelopeGroupsAndRawDate(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", []byte("From: \"Nguyễn Văn A\" <a@x.test>\r\n"+
		"To: Undisclosed:;\r\nCc: Team: b@x.test, c@y.test;, d@z.test\r\n"+
		"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: hi\r\n\r\nx\r\n"))
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	lines, st := r.cmd("FETCH 1 ENVELOPE")
	hasStatus(t, st, "OK")
	want := `* 1 FETCH (UID 1 ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "hi" ` +
		`(("=?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?=" NIL "a" "x.test")) (("=?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?=" NIL "a" "x.test")) ` +
		`(("=?utf-8?q?Nguy=E1=BB=85n_V=C4=83n_A?=" NIL "a" "x.test")) ` +
		`((NIL NIL "Undisclosed" NIL)(NIL NIL NIL NIL)) ` +
		`((NIL NIL "Team" NIL)(NIL NIL "b" "x.test")(NIL NIL "c" "y.test")(NIL NIL NIL NIL)(NIL NIL "d" "z.test")) NIL NIL NIL))`
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("ENVELOPE:\n%q\nwant\n%q", lines, want)
	}

	c := e.dial(t, "nam", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	env := msgs[0].Envelope
	if len(env.To) != 2 || !env.To[0].IsGroupStart() || env.To[0].Mailbox != "Undisclosed" || !env.To[1].IsGroupEnd() || len(env.Cc) != 5 {
		t.Errorf("imapclient envelope To %+v Cc %+v", env.To, env.Cc)
	}
}

func TestBodyStructureNamesEncodedWithoutUTF8(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", []byte("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"+
		"--b\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?Q8O0bmcgdsSDbi5wZGY=?=\"\r\n"+
		"Content-Disposition: attachment;\r\n filename*=UTF-8''C%C3%B4ng%20v%C4%83n%2028%20-%20D%E1%BB%B1%20th%E1%BA%A3o.pdf\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"))
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	lines, st := r.cmd("FETCH 1 BODYSTRUCTURE")
	hasStatus(t, st, "OK")
	got := strings.Join(lines, "\n")
	for _, want := range []string{`("name" "=?UTF-8?B?Q8O0bmcgdsSDbi5wZGY=?=")`,
		`("attachment" ("filename*" "UTF-8''C%C3%B4ng%20v%C4%83n%2028%20-%20D%E1%BB%B1%20th%E1%BA%A3o.pdf"))`} {
		if !strings.Contains(got, want) {
			t.Errorf("BODYSTRUCTURE without UTF8=ACCEPT lacks %s:\n%s", want, got)
		}
	}
	for _, c := range got {
		if c > 127 {
			t.Fatalf("BODYSTRUCTURE without UTF8=ACCEPT carries UTF-8:\n%s", got)
		}
	}
	r.cmd("ENABLE UTF8=ACCEPT")
	lines, _ = r.cmd("FETCH 1 BODYSTRUCTURE")
	got = strings.Join(lines, "\n")
	for _, want := range []string{`("name" "Công văn.pdf")`, `("attachment" ("filename" "Công văn 28 - Dự thảo.pdf"))`} {
		if !strings.Contains(got, want) {
			t.Errorf("BODYSTRUCTURE with UTF8=ACCEPT lacks %s:\n%s", want, got)
		}
	}
}

func TestListSubscribedNonExistent(t *testing.T) {
	e := newEnv(t)
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	// CREATE subscribes nothing; the default mailboxes are subscribed.
	for _, c := range []string{`CREATE "Dự án/2026"`, `CREATE "Cũ"`, `SUBSCRIBE "Dự án/2026"`, `SUBSCRIBE "Cũ"`, `UNSUBSCRIBE "Drafts"`, `UNSUBSCRIBE "Junk"`,
		`UNSUBSCRIBE "Sent"`, `UNSUBSCRIBE "Trash"`, `UNSUBSCRIBE "Archive"`, `UNSUBSCRIBE INBOX`, `DELETE "Cũ"`, `ENABLE UTF8=ACCEPT`} {
		if _, st := r.cmd(c); !strings.HasPrefix(st, "OK") {
			t.Fatalf("%s: %s", c, st)
		}
	}
	check := func(cmd string, want ...string) {
		t.Helper()
		lines, st := r.cmd(cmd)
		hasStatus(t, st, "OK")
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", cmd, strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	}
	// The deleted mailbox's subscription stays (RFC 3501 6.3.6).
	check(`LIST (SUBSCRIBED) "" "*"`,
		`* LIST (\NonExistent \HasNoChildren \Subscribed) "/" "Cũ"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "Dự án/2026"`)
	// "%" does not reach Dự án/2026: its parent is reported for it.
	check(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`,
		`* LIST (\NonExistent \HasNoChildren \Subscribed) "/" "Cũ"`,
		`* LIST (\HasChildren) "/" "Dự án" (CHILDINFO ("SUBSCRIBED"))`)
	// "*" reaches it: no CHILDINFO.
	check(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`,
		`* LIST (\NonExistent \HasNoChildren \Subscribed) "/" "Cũ"`,
		`* LIST (\HasNoChildren \Subscribed) "/" "Dự án/2026"`)
	// RETURN (SUBSCRIBED) marks what is listed, which is mailboxes: the
	// SUBSCRIBED selection alone lists names that are none (RFC 5258 3.2).
	check(`LIST "" "C*" RETURN (SUBSCRIBED)`)
	check(`LIST (SUBSCRIBED) "" "C*" RETURN (SUBSCRIBED)`,
		`* LIST (\NonExistent \HasNoChildren \Subscribed) "/" "Cũ"`)
	check(`LSUB "" "%"`,
		`* LSUB (\HasNoChildren \Noselect) "/" "Cũ"`,
		`* LSUB (\HasChildren \Noselect) "/" "Dự án"`)
	check(`LSUB "" "*"`,
		`* LSUB (\HasNoChildren \Noselect) "/" "Cũ"`,
		`* LSUB (\HasNoChildren) "/" "Dự án/2026"`)
	// Unsubscribing the name ends it; creating the mailbox again takes it over.
	if _, st := r.cmd(`UNSUBSCRIBE "Cũ"`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	check(`LSUB "" "C*"`)
	r.cmd(`SUBSCRIBE "Dự án"`)
	r.cmd(`DELETE "Dự án"`)
	r.cmd(`CREATE "Dự án"`)
	check(`LSUB "" "D*"`,
		`* LSUB (\HasChildren) "/" "Dự án"`,
		`* LSUB (\HasNoChildren) "/" "Dự án/2026"`)
}

func TestAppendEmptyMIMEPart(t *testing.T) {
	e := newEnv(t)
	r := e.raw(t)
	r.cmd("LOGIN nam@example.test pw")
	r.cmd("SELECT INBOX")
	for i, m := range []string{
		// a part with an empty header and an empty body
		"Subject: a\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--\r\n",
		// a text part with no body
		"Subject: b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n--x--\r\n",
		// an empty base64 attachment between two parts
		"Subject: c\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
			"--x\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			"--x\r\nContent-Type: text/plain\r\n\r\nbye\r\n--x--\r\n",
	} {
		lines, st := r.cmd(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(m), m))
		hasStatus(t, st, "OK [APPENDUID")
		if len(lines) == 0 || lines[0] != fmt.Sprintf("* %d EXISTS", i+1) {
			t.Errorf("APPEND %d: %q", i+1, lines)
		}
	}
	lines, st := r.cmd("FETCH 1:3 (BODYSTRUCTURE BINARY.PEEK[1] BODY.PEEK[2])")
	hasStatus(t, st, "OK")
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		`* 1 FETCH (UID 1 BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed"`,
		`* 2 FETCH (UID 2 BODYSTRUCTURE (("text" "plain" NIL NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed"`,
		`("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 0 NIL NIL NIL NIL)`,
		"* 3 FETCH (UID 3 BODYSTRUCTURE",
		"BODY[2] {0}",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("FETCH lacks %s:\n%s", want, got)
		}
	}
}
