package smtpd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/internal/testtool"
	"sealmail/mailstore"
)

// TestDiskFull: with the disk of the store and the spool full, mail on the
// MX port and on submission (local and remote recipients) is refused with
// 452/451 4.3.1 — never a 5xx the sender would bounce, never a 250 for a
// message that is not stored — every acknowledged message is readable, and
// mail flows again once space returns.
func TestDiskFull(t *testing.T) {
	dir := testtool.Tmpfs(t, 32<<20)
	store := openStore(t, filepath.Join(dir, "data"))
	t.Cleanup(func() { store.Close() })
	e := start(t, &Server{Store: store, SpoolDir: filepath.Join(dir, "spool"), Queue: &fakeQueue{}})

	free := testtool.Free(t, dir)
	// What the test frees later stands apart from the filler that stays.
	testtool.Fill(t, filepath.Join(dir, "filler"), free-12<<20)
	testtool.Fill(t, filepath.Join(dir, "later"), 6<<20)

	// sendOne sends a message of about size bytes over a connection of its
	// own, on MX (to a@) or on submission (from a@ to b@ and a remote
	// recipient), and returns it with the result.
	sendOne := func(n, size int, submit bool) (string, error) {
		var c *smtp.Client
		var err error
		if submit {
			if c, err = smtp.DialStartTLS(e.sub, e.clientTLS); err == nil {
				err = c.Auth(sasl.NewPlainClient("", "a@example.test", "pw"))
			}
		} else {
			c, err = smtp.Dial(e.mx)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := bigMessage(fmt.Sprintf("thư %d", n), size)
		if submit {
			msg = strings.Replace(msg, "From: x@remote.test\r\n", "From: a@example.test\r\n", 1)
			err = send(c, "a@example.test", []string{"b@example.test", "partner@other.test"}, msg)
		} else {
			err = send(c, "x@remote.test", []string{"a@example.test"}, msg)
		}
		c.Quit()
		return msg, err
	}
	isFull := func(err error) bool {
		var se *smtp.SMTPError
		return errors.As(err, &se) && (se.Code == 452 || se.Code == 451) && se.EnhancedCode == smtp.EnhancedCode{4, 3, 1}
	}

	sent := map[string]string{} // subject: message, acknowledged
	refused := map[bool]int{}
	for n := 0; (refused[false] < 3 || refused[true] < 3) && n < 200; n++ {
		submit := n%2 == 1
		msg, err := sendOne(n, 300<<10, submit)
		switch {
		case err == nil:
			sent[fmt.Sprintf("thư %d", n)] = msg
		case isFull(err):
			refused[submit]++
		default:
			t.Fatalf("message %d (submission %v) with the disk full: %v, want 452 or 451 4.3.1", n, submit, err)
		}
	}
	if refused[false] == 0 || refused[true] == 0 {
		t.Fatalf("the disk never filled: refusals %v", refused)
	}
	t.Logf("%d messages acknowledged, refusals (submission: count) %v", len(sent), refused)

	// Space returns: within 30 s mail is taken again, on both ports.
	if err := os.Remove(filepath.Join(dir, "later")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i, submit := range []bool{false, true} {
		for {
			msg, err := sendOne(1000+i, 1<<20, submit)
			if err == nil {
				sent[fmt.Sprintf("thư %d", 1000+i)] = msg
				break
			}
			if !isFull(err) {
				t.Fatalf("after space returned (submission %v): %v", submit, err)
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("1 MiB still refused 30 s after 6 MiB were freed (submission %v): %v", submit, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Logf("service back %v after space returned", time.Since(start).Round(time.Millisecond))

	// Every acknowledged message is there, intact: MX ones in a@'s INBOX,
	// submitted ones in b@'s and in the queue.
	got := map[string][]byte{}
	for _, addr := range []string{"a@example.test", "b@example.test"} {
		acct, err := store.Account(context.Background(), addr)
		if err != nil {
			t.Fatal(err)
		}
		mb, err := store.Mailbox(context.Background(), acct.ID, mailstore.Inbox)
		if err != nil {
			t.Fatal(err)
		}
		err = store.Fetch(context.Background(), mb.ID, nil, mailstore.FetchEnvelope|mailstore.FetchContent, func(it mailstore.Item) error {
			if it.Err != nil {
				return it.Err
			}
			got[it.Envelope.Subject] = it.Content
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for subject, msg := range sent {
		_, body, _ := strings.Cut(msg, "\r\n\r\n")
		if c, ok := got[subject]; !ok || !strings.HasSuffix(string(c), body) {
			t.Errorf("%q acknowledged but not stored intact (%d bytes stored)", subject, len(c))
		}
	}
	submitted := 0
	for _, msg := range sent {
		if strings.HasPrefix(msg, "From: a@example.test") {
			submitted++
		}
	}
	if q := e.queued(t); len(q) != submitted {
		t.Errorf("%d queue entries for %d acknowledged submissions", len(q), submitted)
	}
}
