package imapd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Issue 15, defect 4: LIST with many wildcards over many folders took time
// exponential in the number of wildcards ("%*" 8 times over 900 folders: 109 s).
func TestListManyWildcards(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 900 {
		name := fmt.Sprintf("Phòng %d/Hồ sơ %d/Năm %d", i%30, i, 2000+i%25)
		if _, err := e.store.CreateMailbox(ctx, e.accts[0].ID, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	r := e.raw(t)
	if _, st := r.cmd(`LOGIN nam@example.test pw`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	for _, pattern := range []string{strings.Repeat("%*", 8) + "x", strings.Repeat("%*", 40) + "x", strings.Repeat("*%", 40) + "5"} {
		start := time.Now()
		r.c.SetDeadline(time.Now().Add(30 * time.Second))
		lines, st := r.cmd(`LIST "" "` + pattern + `"`)
		if !strings.HasPrefix(st, "OK") {
			t.Fatalf("LIST %s: %s", pattern, st)
		}
		if strings.HasSuffix(pattern, "x") && len(lines) != 0 {
			t.Errorf("LIST %s: %d matches, want none", pattern, len(lines))
		}
		if strings.HasSuffix(pattern, "5") && len(lines) == 0 {
			t.Errorf("LIST %s: no match", pattern)
		}
		t.Logf("LIST %.12s… over 900 folders: %v", pattern, time.Since(start))
	}
}

// Issue 15, defect 7: a client's mistakes are answered BAD or NO with a code
// naming them, at once, never NO [SERVERBUG] (which says the server is broken).
func TestClientMistakes(t *testing.T) {
	e := newEnv(t)
	e.deliver(t, e.accts[0], "INBOX", []byte("Subject: x\r\n\r\nhello\r\n"))
	r := e.raw(t)
	if _, st := r.cmd(`LOGIN nam@example.test pw`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	if _, st := r.cmd(`SELECT INBOX`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	for _, c := range []struct{ cmd, want string }{
		{"SEARCH " + strings.Repeat("(", 2000) + "ALL" + strings.Repeat(")", 2000), "BAD"},
		{"SEARCH " + strings.Repeat("NOT ", 5000) + "ALL", "BAD"},
		{"SEARCH " + strings.Repeat("OR SEEN ", 3000) + "ALL", "BAD"},
		{"SEARCH " + strings.Repeat("SEEN ", 3000) + "ALL", "NO [LIMIT]"},
		{"SEARCH " + strings.Repeat("NOT ", 30) + "ALL", "OK"},
		{"SEARCH " + strings.Repeat("SEEN ", 300) + "ALL", "OK"},
		{`CREATE "&Jjo"`, "BAD"},
		{`CREATE "&AGEAYgBj-"`, "BAD"}, // UTF-7 of ASCII must not be encoded
		{`SELECT "&ZeVnLIqe"`, "BAD"},
		{`LIST "" "&Jjo*"`, "BAD"},
		{`STATUS "&-&" (MESSAGES)`, "BAD"},
	} {
		_, st := r.cmd(c.cmd)
		if !strings.HasPrefix(st, c.want) || strings.Contains(st, "SERVERBUG") {
			t.Errorf("%.40s…: %s, want %s", c.cmd, st, c.want)
		}
	}
	if _, st := r.cmd(`SELECT INBOX`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}

	// A synchronizing literal too large for the command is refused before the
	// client sends it: the client waits for "+", so the answer must not wait
	// for the literal (it used to come after the 30 s command timeout).
	// The line is read with raw's deadline, shorter than that timeout.
	r.n++
	fmt.Fprintf(r.c, "a%d CREATE {100000}\r\n", r.n)
	l := r.line()
	if !strings.HasPrefix(l, fmt.Sprintf("a%d NO [LIMIT]", r.n)) && !strings.HasPrefix(l, fmt.Sprintf("a%d BAD", r.n)) {
		t.Errorf("oversized literal: %q", l)
	}
	// The connection goes on.
	if _, st := r.cmd(`NOOP`); !strings.HasPrefix(st, "OK") {
		t.Fatalf("after oversized literal: %s", st)
	}
	// A small one is fine.
	r.n++
	fmt.Fprintf(r.c, "a%d CREATE {4}\r\n", r.n)
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("small literal: %q", l)
	}
	fmt.Fprintf(r.c, "Abcd\r\n")
	if l := r.line(); !strings.HasPrefix(l, fmt.Sprintf("a%d OK", r.n)) {
		t.Fatalf("small literal: %q", l)
	}

	// A non-synchronizing one (LITERAL+) is already on its way: BAD, and the
	// server may hang up rather than read it, but must not hang.
	r.n++
	fmt.Fprintf(r.c, "a%d CREATE {100000+}\r\n%s\r\n", r.n, strings.Repeat("x", 100000))
	l = r.line()
	if !strings.HasPrefix(l, fmt.Sprintf("a%d BAD", r.n)) && !strings.HasPrefix(l, "* BYE") && !strings.HasPrefix(l, fmt.Sprintf("a%d NO [LIMIT]", r.n)) {
		t.Errorf("oversized non-synchronizing literal: %q", l)
	}
}
