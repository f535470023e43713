package smtpd

import (
	"io"
	"strings"
	"testing"
	"time"
)

// dribble writes s a byte at a time, every gap, until a write fails.
func (r *raw) dribble(s string, gap time.Duration) {
	for i := range len(s) {
		if _, err := io.WriteString(r.conn, s[i:i+1]); err != nil {
			return
		}
		time.Sleep(gap)
	}
}

// expectHangUp reads a 421 with this enhanced code, then the end of the
// connection, within limit of start.
func (r *raw) expectHangUp(start time.Time, enhanced string, limit time.Duration) {
	r.t.Helper()
	code, msg := r.reply()
	if code != 421 || !strings.HasPrefix(msg, enhanced) {
		r.t.Fatalf("got %d %s, want 421 %s", code, msg, enhanced)
	}
	if d := time.Since(start); d > limit {
		r.t.Errorf("the slow client held the connection %v, want at most %v", d, limit)
	}
	if _, err := r.r.ReadLine(); err == nil {
		r.t.Error("connection still open after 421")
	}
}

// TestSlowCommand: a command line sent a byte at a time is cut off at
// CommandTimeout from when the server began waiting for it, however steadily
// the bytes come.
func TestSlowCommand(t *testing.T) {
	e := start(t, &Server{CommandTimeout: 600 * time.Millisecond})
	r := dialRaw(t, e.mx)
	r.ok("EHLO slow.test")
	begin := time.Now()
	go r.dribble("MAIL FROM:<x@remote.test>\r\n", 100*time.Millisecond)
	r.expectHangUp(begin, "4.4.2", 2*time.Second)
}

// TestSlowData: after the grace period (CommandTimeout) a message must keep
// coming at MinDataRate; a byte every 100 ms is far too slow: 421 and hang-up,
// the same for DATA and BDAT, and nothing stored.
func TestSlowData(t *testing.T) {
	e := start(t, &Server{CommandTimeout: 600 * time.Millisecond, MinDataRate: 1000})
	r := dialRaw(t, e.mx)
	r.ok("EHLO slow.test")
	r.ok("MAIL FROM:<x@remote.test>")
	r.ok("RCPT TO:<a@example.test>")
	r.ok("DATA")
	begin := time.Now()
	go r.dribble("Subject: slow\r\n\r\n"+strings.Repeat("x", 200)+"\r\n.\r\n", 100*time.Millisecond)
	r.expectHangUp(begin, "4.4.2", 2*time.Second)

	r = dialRaw(t, e.mx)
	r.ok("EHLO slow.test")
	r.ok("MAIL FROM:<x@remote.test>")
	r.ok("RCPT TO:<a@example.test>")
	begin = time.Now()
	r.write("BDAT 100 LAST\r\n")
	go r.dribble(strings.Repeat("y", 100), 100*time.Millisecond)
	r.expectHangUp(begin, "4.4.2", 2*time.Second)
	if n := len(e.inbox(t, "a@example.test")); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}
