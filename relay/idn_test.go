package relay

import (
	"context"
	"fmt"
	"testing"

	"sealmail/internal/testwait"
	"sealmail/mailstore/storetest"
)

// TestIDNDowngrade sends to a Vietnamese internationalised domain through a
// server without SMTPUTF8: the MX is looked up by the punycode name and the
// recipient is named in punycode, which needs no SMTPUTF8 (RFC 6531 3.2).
func TestIDNDowngrade(t *testing.T) {
	const idn, ascii = "sở-tc.việt.vn", "xn--s-tc-0z5a.xn--vit-5kz.vn"
	ctx := context.Background()
	s, _ := openStore(t, "a@example.test")
	ts, _ := startServer(t)
	q := &Queue{Store: s, Resolver: mxTo(ascii), Hostname: "mail.example.test", Port: ts.port()}
	runQueue(t, q)
	if err := q.Enqueue(ctx, "a@example.test", []string{"Anna@" + idn}, storetest.Msg("a@example.test", "anna@"+idn, "s", "b")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "delivery", func() bool { return len(ts.messages()) == 1 && queueLen(t, s) == 0 })
	if got := fmt.Sprint(ts.messages()[0].rcpts); got != "[Anna@"+ascii+"]" {
		t.Errorf("the server was sent RCPT %s, want [Anna@%s]", got, ascii)
	}
}
