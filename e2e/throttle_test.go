package e2e_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/throttle"
)

// The login throttle cannot be sidestepped: guessers at one account from
// three addresses (127.0.0.2-4), over IMAP and SMTP submission, with many
// connections and every spelling of the name, get at most 30 wrong passwords
// checked per 10 minutes, while the owner, from their usual address
// (127.0.0.1), still logs in. Time is the throttle's injected clock: 20
// simulated minutes take seconds.
func TestLoginThrottleCannotBeSidestepped(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	logins := throttle.NewLogins()
	logins.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logins.Logger = testLogger(t)
	x := newInstance(t, "example.test", "nam", "mallory")
	x.imap.Logins, x.smtp.Logins = logins, logins
	x.start(t)

	if err := x.imapLogin(t, "127.0.0.1", "nam@example.test", "pw"); err != nil {
		t.Fatalf("owner's first login: %v", err)
	}

	spellings := []string{"nam@example.test", " NAM@example.test", "Nam@Example.Test ", "nAm@EXAMPLE.TEST"}
	type guesser struct {
		imap *imapclient.Client
		smtp *smtpConn
	}
	var guessers []guesser
	for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		for range 3 {
			guessers = append(guessers, guesser{x.imapDial(t, from), x.smtpDial(t, from)})
		}
	}
	var checked []time.Time // when a wrong password was checked (not refused at once)
	start := now
	for step := 0; now.Sub(start) < 20*time.Minute; step++ {
		var wg sync.WaitGroup
		results := make(chan bool, 2*len(guessers))
		for i, g := range guessers {
			name := spellings[(step+i)%len(spellings)]
			pw := fmt.Sprintf("guess-%d-%d", step, i)
			wg.Add(2)
			go func() {
				defer wg.Done()
				err := g.imap.Login(name, pw).Wait()
				switch {
				case isIMAPCode(err, imap.ResponseCodeAuthenticationFailed):
					results <- true
				case isIMAPCode(err, imap.ResponseCodeUnavailable):
					results <- false
				default:
					t.Errorf("IMAP guess: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				switch code := g.smtp.auth(t, name, pw); code {
				case 535:
					results <- true
				case 454:
					results <- false
				default:
					t.Errorf("SMTP guess: %d", code)
				}
			}()
		}
		wg.Wait()
		close(results)
		for r := range results {
			if r {
				checked = append(checked, now)
			}
		}
		// The attacker's own account, logged in from their address, clears nothing.
		if err := x.imapLogin(t, "127.0.0.2", "mallory@example.test", "pw"); err != nil {
			t.Fatalf("attacker's own account: %v", err)
		}
		if step%20 == 0 {
			// The owner keeps logging in, over both protocols.
			if err := x.imapLogin(t, "127.0.0.1", " Nam@example.test", "pw"); err != nil {
				t.Fatalf("owner over IMAP at %v: %v", now.Sub(start), err)
			}
			// Closed at once: the owner's connections left open would
			// reach the per-account connection limit (its 454 is not the throttle's).
			owner := x.smtpDial(t, "127.0.0.1")
			code := owner.auth(t, "nam@example.test", "pw")
			owner.c.Close()
			if code != 235 {
				t.Fatalf("owner over SMTP at %v: %d", now.Sub(start), code)
			}
		}
		mu.Lock()
		now = now.Add(2 * time.Second)
		mu.Unlock()
	}
	if t.Failed() {
		return
	}
	for i := range checked {
		n := 0
		for _, at := range checked[i:] {
			if at.Sub(checked[i]) < 10*time.Minute {
				n++
			}
		}
		if n > 30 {
			t.Fatalf("%d wrong passwords checked in the 10 minutes from %v", n, checked[i].Sub(start))
		}
	}
	if len(checked) < 20 {
		t.Errorf("%d wrong passwords checked in 20 minutes: the throttle refuses more than it should", len(checked))
	}
	t.Logf("%d guesses checked in 20 simulated minutes", len(checked))
}

func isIMAPCode(err error, code imap.ResponseCode) bool {
	e, ok := err.(*imap.Error)
	return ok && e.Code == code
}

func (x *instance) dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// imapDial connects from a local address and starts TLS.
func (x *instance) imapDial(t *testing.T, from string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.NewStartTLS(x.dialFrom(t, from, x.imapAddr), &imapclient.Options{TLSConfig: x.client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (x *instance) imapLogin(t *testing.T, from, user, password string) error {
	t.Helper()
	c := x.imapDial(t, from)
	defer c.Close()
	return c.Login(user, password).Wait()
}

// smtpConn is a submission connection after STARTTLS, driven by hand so that
// one connection can try AUTH again and again.
type smtpConn struct {
	c net.Conn
	r *bufio.Reader
}

func (x *instance) smtpDial(t *testing.T, from string) *smtpConn {
	t.Helper()
	nc := x.dialFrom(t, from, x.submission)
	s := &smtpConn{c: nc, r: bufio.NewReader(nc)}
	s.expect(t, 220)
	s.cmd(t, "EHLO client.example.test", 250)
	s.cmd(t, "STARTTLS", 220)
	tc := tls.Client(nc, x.client)
	s.c, s.r = tc, bufio.NewReader(tc)
	s.cmd(t, "EHLO client.example.test", 250)
	return s
}

func (s *smtpConn) reply(t *testing.T) int {
	s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Errorf("smtp: %v", err)
			return 0
		}
		if len(line) < 4 || line[3] != '-' {
			var code int
			fmt.Sscanf(line, "%d", &code)
			return code
		}
	}
}

func (s *smtpConn) expect(t *testing.T, code int) {
	if got := s.reply(t); got != code {
		t.Fatalf("smtp: got %d, want %d", got, code)
	}
}

func (s *smtpConn) cmd(t *testing.T, line string, code int) {
	fmt.Fprintf(s.c, "%s\r\n", line)
	s.expect(t, code)
}

func (s *smtpConn) auth(t *testing.T, user, password string) int {
	fmt.Fprintf(s.c, "AUTH PLAIN %s\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)))
	return s.reply(t)
}
