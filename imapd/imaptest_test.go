package imapd

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Regression tests for what a run of Dovecot's imaptest scripted tests found
// (see docs/conformance.md); raw protocol, as the scripts speak it.

// A MIN or MAX alone reports the MODSEQ of the messages returned, not the
// highest of all that matched (RFC 7162 3.1.5); imaptest esearch-condstore.
func TestESearchModSeqOfMinMax(t *testing.T) {
	e := newInbox(t, 4)
	r := e.login(t, "nam")
	r.ok("SELECT INBOX (CONDSTORE)")
	modseq := map[int]uint64{}
	for _, n := range []int{1, 3, 2, 4} {
		modseq[n] = number(t, r.ok(fmt.Sprintf("STORE %d +FLAGS \\Seen", n)), "MODSEQ (")
	}
	for _, c := range []struct {
		search, want string
	}{
		{"RETURN (MIN) 1:3 MODSEQ 1", fmt.Sprintf("MIN 1 MODSEQ %d", modseq[1])},
		{"RETURN (MAX) 1:3 MODSEQ 1", fmt.Sprintf("MAX 3 MODSEQ %d", modseq[3])},
		{"RETURN () 1:3 MODSEQ 1", fmt.Sprintf("ALL 1:3 MODSEQ %d", modseq[2])},
		{"RETURN (MIN MAX) 2:3 MODSEQ 1", fmt.Sprintf("MIN 2 MAX 3 MODSEQ %d", modseq[2])},
		{"RETURN (COUNT MIN) 1:3 MODSEQ 1", fmt.Sprintf("MIN 1 COUNT 3 MODSEQ %d", modseq[2])},
		{fmt.Sprintf("RETURN (MIN) 2:3 MODSEQ %d", modseq[2]+1), ""},
	} {
		got := grep(r.ok("SEARCH "+c.search), `^\* ESEARCH`)
		want := `^\* ESEARCH \(TAG "a\d+"\)$`
		if c.want != "" {
			want = `^\* ESEARCH \(TAG "a\d+"\) ` + regexp.QuoteMeta(c.want) + `$`
		}
		if len(got) != 1 || !regexp.MustCompile(want).MatchString(got[0]) {
			t.Errorf("SEARCH %s: %q, want %s", c.search, got, c.want)
		}
	}
}

// A FETCH of a message another session expunged, which this session has not
// been told of yet (no EXPUNGE may be sent during FETCH): the UID is still
// known and is answered; anything else gets NO [EXPUNGEISSUED] with the text
// clients know; imaptest expunge.
func TestFetchExpungedByOtherSession(t *testing.T) {
	e := newInbox(t, 3)
	a, b := e.login(t, "nam"), e.login(t, "nam")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	a.ok("STORE 3 +FLAGS.SILENT \\Deleted")
	if got := grep(a.ok("EXPUNGE"), `EXPUNGE`); len(got) != 1 {
		t.Fatalf("EXPUNGE: %q", got)
	}
	lines, st := b.cmd("FETCH 2:3 UID")
	hasStatus(t, st, "OK")
	if got := grep(lines, `FETCH`); len(got) != 2 || got[1] != "* 3 FETCH (UID 3)" || len(grep(lines, `EXPUNGE`)) != 0 {
		t.Errorf("FETCH UID: %q", lines)
	}
	lines, st = b.cmd("FETCH 2:3 (UID FLAGS)")
	hasStatus(t, st, "NO [EXPUNGEISSUED] Some of the requested messages no longer exist")
	if got := grep(lines, `FETCH`); len(got) != 1 || !strings.HasPrefix(got[0], "* 2 FETCH (") {
		t.Errorf("FETCH FLAGS: %q", lines)
	}
	if got := grep(b.ok("NOOP"), `EXPUNGE`); len(got) != 1 || got[0] != "* 3 EXPUNGE" {
		t.Errorf("NOOP after: %q", got)
	}
}

// CREATE subscribes nothing (the client subscribes what it wants), a name
// subscribed before its mailbox was deleted stays subscribed when it is
// created again, and only the SUBSCRIBED selection lists names that are no
// mailbox; imaptest listext.
func TestCreateDoesNotSubscribe(t *testing.T) {
	e := newEnv(t)
	r := e.login(t, "nam")
	for _, n := range []string{"t/a", "t/b/c", "t/d", "t/e/f", "t/e/g"} {
		r.ok("CREATE " + n)
	}
	for _, n := range []string{"t/a", "t/b/c", "t/d", "t/e/g"} {
		r.ok("SUBSCRIBE " + n)
	}
	r.ok("DELETE t/d")
	lines := r.ok(`LIST "" t/% RETURN (CHILDREN SUBSCRIBED)`)
	want := []string{
		`* LIST (\HasNoChildren \Subscribed) "/" "t/a"`,
		`* LIST (\HasChildren) "/" "t/b"`,
		`* LIST (\HasChildren) "/" "t/e"`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("LIST RETURN (SUBSCRIBED):\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	lines = r.ok(`LIST (SUBSCRIBED) "" t/*`)
	if got := grep(lines, `"t/d"`); len(got) != 1 || !strings.Contains(got[0], `\NonExistent`) {
		t.Errorf("SUBSCRIBED selection: %q", lines)
	}
	// RECURSIVEMATCH: t/e has the subscribed t/e/g, which the pattern does
	// not match itself; t/b/c matches it and is listed on its own.
	lines = r.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" (t/e t/b t/b/c)`)
	want = []string{
		`* LIST (\HasNoChildren \Subscribed) "/" "t/b/c"`,
		`* LIST (\HasChildren) "/" "t/e" (CHILDINFO ("SUBSCRIBED"))`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("RECURSIVEMATCH:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	r.ok("CREATE t/d")
	if got := grep(r.ok(`LSUB "" t/d`), `"t/d"`); len(got) != 1 {
		t.Errorf("re-created t/d lost its subscription: %q", got)
	}
	if got := r.ok(`LSUB "" t/*`); len(grep(got, `"t/e/f"`)) != 0 {
		t.Errorf("CREATE subscribed: %q", got)
	}
}

// Addresses net/mail refuses whole still reach ENVELOPE and SEARCH: a source
// route is ENVELOPE's addr-adl, comments inside an address are dropped;
// imaptest fetch-envelope, search-addresses. SEARCH matches substrings, also
// inside words (search-body).
func TestObsoleteAddressesAndSubstrings(t *testing.T) {
	e := newEnv(t)
	a := e.accts[0]
	e.deliver(t, a, "", []byte("From: <@route:user@domain>\r\nDate: Sat, 01 Feb 2007 01:02:03 +0200\r\n\r\nasdfghjkl zxcvbnm\r\n"))
	e.deliver(t, a, "", []byte("From: <user-from (comment)@ (comment) domain.org>\r\nTo: groupname: groupuser1@domain.org;\r\n\r\nqwertyuiop\r\n"))
	r := e.login(t, "nam")
	r.ok("SELECT INBOX")
	if got := grep(r.ok("FETCH 1 ENVELOPE"), `ENVELOPE`); len(got) != 1 ||
		!strings.Contains(got[0], `"Sat, 01 Feb 2007 01:02:03 +0200" NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain"))`) {
		t.Errorf("ENVELOPE with a route: %q", got)
	}
	if got := grep(r.ok("FETCH 2 ENVELOPE"), `ENVELOPE`); len(got) != 1 || !strings.Contains(got[0], `((NIL NIL "user-from" "domain.org"))`) {
		t.Errorf("ENVELOPE with comments: %q", got)
	}
	for cmd, want := range map[string]string{
		"SEARCH FROM user-from@domain.org": "* SEARCH 2",
		"SEARCH FROM ser-fro":              "* SEARCH 2",
		"SEARCH TO groupuser1":             "* SEARCH 2",
		"SEARCH TO groupname":              "* SEARCH 2",
		"SEARCH BODY sdfghjk":              "* SEARCH 1",
		"SEARCH TEXT wertyuio":             "* SEARCH 2",
		"SEARCH TEXT xcvbn":                "* SEARCH 1",
		"SEARCH TEXT \"jkl zxc\"":          "* SEARCH 1",
		"SEARCH TEXT \"jkl  zxc\"":         "* SEARCH",
	} {
		if got := grep(r.ok(cmd), `^\* SEARCH`); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %s", cmd, got, want)
		}
	}
}

// BINARY with BODY's section specifiers, Dovecot's extension of RFC 3516 that
// imaptest's fetch-binary-mime uses: what BODY gives, nothing decoded.
func TestBinarySpecifiers(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "", []byte("From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\neGluIGNow6Bv\r\n"+
		"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: sub@x.test\r\nSubject: sub\r\n\r\nbody\r\n--b--\r\n"))
	r := e.login(t, "nam")
	r.ok("SELECT INBOX")
	lit := func(item, s string) string { return fmt.Sprintf("* 1 FETCH (%s ~{%d}\r\n%s)", item, len(s), s) }
	mime := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	for cmd, want := range map[string]string{
		"FETCH 1 BINARY.PEEK[1]":                         lit("BINARY[1]", "xin chào"),
		"FETCH 1 BINARY.PEEK[1.MIME]":                    lit("BINARY[1.MIME]", mime),
		"FETCH 1 BINARY.SIZE[1.MIME]":                    fmt.Sprintf("* 1 FETCH (BINARY.SIZE[1.MIME] %d)", len(mime)),
		"FETCH 1 BINARY.SIZE[2.HEADER]":                  fmt.Sprintf("* 1 FETCH (BINARY.SIZE[2.HEADER] %d)", len("From: sub@x.test\r\nSubject: sub\r\n\r\n")),
		"FETCH 1 BINARY.PEEK[2.HEADER.FIELDS (Subject)]": lit(`BINARY[2.HEADER.FIELDS ("Subject")]`, "Subject: sub\r\n\r\n"),
		"FETCH 1 BINARY.PEEK[2.TEXT]<1.2>":               lit("BINARY[2.TEXT]<1>", "od"),
	} {
		lines := r.ok(cmd)
		got := strings.Join(lines, "\r\n")
		got = strings.Replace(got, "UID 1 ", "", 1)
		if got != want {
			t.Errorf("%s:\n%q\nwant\n%q", cmd, got, want)
		}
	}
}

// An APPENDed internal date keeps its zone: FETCH answers it as given, and
// BEFORE/ON/SINCE take its day in that zone, whatever the server's;
// imaptest search-intdate.
func TestInternalDateZone(t *testing.T) {
	e := newEnv(t)
	r := e.login(t, "nam")
	for _, d := range []string{"24-Mar-2007 23:00:00 +0200", "25-Mar-2007 00:00:00 +0200", "25-Mar-2007 23:00:00 +0300", "26-Mar-2007 00:00:00 +0300"} {
		m := "Subject: x\r\n\r\nx\r\n"
		_, st := r.cmd(fmt.Sprintf("APPEND INBOX %q {%d+}\r\n%s", d, len(m), m))
		hasStatus(t, st, "OK")
	}
	r.ok("SELECT INBOX")
	got := grep(r.ok("FETCH 1:4 INTERNALDATE"), `INTERNALDATE`)
	for i, want := range []string{`"24-Mar-2007 23:00:00 +0200"`, `"25-Mar-2007 00:00:00 +0200"`, `"25-Mar-2007 23:00:00 +0300"`, `"26-Mar-2007 00:00:00 +0300"`} {
		if i >= len(got) || !strings.Contains(got[i], want) {
			t.Errorf("FETCH INTERNALDATE %d: %q, want %s", i+1, got, want)
		}
	}
	for cmd, want := range map[string]string{
		"SEARCH ON 24-Mar-2007":     "* SEARCH 1",
		"SEARCH ON 25-Mar-2007":     "* SEARCH 2 3",
		"SEARCH SINCE 26-Mar-2007":  "* SEARCH 4",
		"SEARCH BEFORE 25-Mar-2007": "* SEARCH 1",
		"SEARCH SENTON 25-Mar-2007": "* SEARCH 2 3", // no Date: field, the internal date's day
	} {
		if got := grep(r.ok(cmd), `^\* SEARCH`); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %s", cmd, got, want)
		}
	}
}
