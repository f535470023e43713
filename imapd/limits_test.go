package imapd

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/internal/testlog"
	"sealmail/internal/testwait"
	"sealmail/mailstore/storetest"
	"sealmail/throttle"
)

func withLog(log *testlog.Capture) func(*Server) {
	return func(s *Server) { s.Logger = log.Logger(slog.LevelWarn) }
}

// dialFrom connects over implicit TLS from a local address (127.0.0.x stands
// for another client address) and logs in; it returns the login's error.
func (e *env) dialFrom(t testing.TB, from, user string, h *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	nc, err := tls.DialWithDialer(&d, "tcp", e.tls, e.client)
	if err != nil {
		t.Fatal(err)
	}
	c := imapclient.New(nc, &imapclient.Options{UnilateralDataHandler: h})
	t.Cleanup(func() { c.Close() })
	return c, c.Login(user, "pw").Wait()
}

// An agency office behind one NAT address: 100 staff with 3 clients each log
// in from one address, fetch and idle at once; the 21st connection of one
// account from that address is refused without disturbing anyone else, and
// 150 connections that never log in are capped at 100.
func TestConnectionLimitsOffice(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 470 TLS connections")
	}
	var log testlog.Capture
	e := newEnv(t, withLog(&log))
	const staff, perUser = 100, 3
	var addrs []string
	for i := range staff {
		addrs = append(addrs, fmt.Sprintf("staff%d@example.test", i))
	}
	accts := storetest.Setup(t, e.store, addrs...)
	for _, a := range accts {
		e.deliver(t, a, "", storetest.Msg("vanthu@example.test", a.Address, "Công văn số 1", "Kính gửi"))
	}

	// exists[i] receives the new message counts seen by account i's clients.
	exists := make([]chan uint32, staff)
	type client struct {
		c    *imapclient.Client
		idle *imapclient.IdleCommand
	}
	clients := make([]client, staff*perUser)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 40) // logins in flight: well under the unauthenticated cap
	errs := make(chan error, len(clients))
	for i := range exists {
		exists[i] = make(chan uint32, perUser*4)
	}
	for n := range clients {
		i := n % staff
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			h := &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists[i] <- *d.NumMessages
				}
			}}
			c, err := e.dialFrom(t, "127.0.0.1", addrs[i], h)
			if err != nil {
				errs <- fmt.Errorf("login %d of %s: %w", n/staff+1, addrs[i], err)
				return
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				errs <- err
				return
			}
			msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
			if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "Công văn số 1" {
				errs <- fmt.Errorf("fetch of %s: %v %v", addrs[i], msgs, err)
				return
			}
			idle, err := c.Idle()
			if err != nil {
				errs <- err
				return
			}
			clients[n] = client{c, idle}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Drain the EXISTS of SELECT.
	for i := range exists {
		for len(exists[i]) > 0 {
			<-exists[i]
		}
	}

	// staff0 opens 17 more connections: 20 in all; the 21st is refused.
	for range 20 - perUser {
		if _, err := e.dialFrom(t, "127.0.0.1", addrs[0], nil); err != nil {
			t.Fatalf("connection up to 20: %v", err)
		}
	}
	c21, err := e.dialFrom(t, "127.0.0.1", addrs[0], nil)
	if !isCode(err, imap.ResponseCodeLimit) || !strings.Contains(err.Error(), "limit 20") {
		t.Fatalf("21st connection of one account from one address: %v", err)
	}
	// That client is told, and may still use its connection (e.g. log out).
	if err := c21.Logout().Wait(); err != nil {
		t.Errorf("logout after the refusal: %v", err)
	}
	// Everyone else is unaffected: a fourth client of staff1 logs in, and a
	// message to every account reaches all their idling clients.
	if _, err := e.dialFrom(t, "127.0.0.1", addrs[1], nil); err != nil {
		t.Fatalf("other account after the refusal: %v", err)
	}
	for _, a := range accts {
		e.deliver(t, a, "", storetest.Msg("vanthu@example.test", a.Address, "Công văn số 2", "Kính gửi"))
	}
	for i := range exists {
		for range perUser {
			if n := <-exists[i]; n != 2 {
				t.Fatalf("%s: EXISTS %d", addrs[i], n)
			}
		}
	}
	if got := log.Grep("level=WARN", `msg="connection refused"`, "protocol=imap", "limit=max-connections-per-user-ip", "max=20",
		"ip=127.0.0.1", "user=staff0@example.test"); len(got) != 1 {
		t.Errorf("WARN lines for the 21st connection: %q", got)
	}

	// 150 connections from one address that never log in: 100 are greeted,
	// 50 told why not. The 300 logged-in ones do not count against them.
	var greeted, refused int
	var conns []net.Conn
	for range 150 {
		c, err := tls.Dial("tcp", e.tls, e.client)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case strings.HasPrefix(line, "* OK"):
			greeted++
		case strings.HasPrefix(line, "* BYE [LIMIT] Too many connections from your address (limit 100)"):
			refused++
		default:
			t.Fatalf("greeting %q %v", line, err)
		}
	}
	if greeted != 100 || refused != 50 {
		t.Errorf("150 unauthenticated connections: %d greeted, %d refused", greeted, refused)
	}
	if got := log.Grep("level=WARN", "protocol=imap", "limit=max-unauthenticated-per-ip", "max=100", "ip=127.0.0.1"); len(got) != 1 {
		t.Errorf("WARN lines for 50 refusals within a minute (rate-limited to one): %q", got)
	}
	// Closing frees the slots.
	for _, c := range conns {
		c.Close()
	}
	testwait.For(t, "the closed connections' slots", func() bool {
		c, err := tls.Dial("tcp", e.tls, e.client)
		if err != nil {
			return false
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.HasPrefix(line, "* OK")
	})
	for _, cl := range clients {
		cl.idle.Close()
	}
}

// The per-account cap counts every address: the 4th connection of an account
// over 127.0.0.2-5 is refused with PerAccount 3, while unauthenticated
// connections are not held back.
func TestConnectionLimitPerAccount(t *testing.T) {
	var log testlog.Capture
	e := newEnv(t, withLog(&log), func(s *Server) { s.ConnLimits = throttle.ConnLimits{PerAccount: 3} })
	for i := 2; i <= 4; i++ {
		if _, err := e.dialFrom(t, fmt.Sprintf("127.0.0.%d", i), "nam@example.test", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.dialFrom(t, "127.0.0.5", "nam@example.test", nil); !isCode(err, imap.ResponseCodeLimit) {
		t.Fatalf("4th connection of the account: %v", err)
	}
	if _, err := e.dialFrom(t, "127.0.0.5", "lan@example.test", nil); err != nil {
		t.Fatalf("other account: %v", err)
	}
	if got := log.Grep("limit=max-connections-per-user ", "max=3", "ip=127.0.0.5", "user=nam@example.test"); len(got) != 1 {
		t.Errorf("WARN lines: %q", got)
	}
}

// UNAUTHENTICATE gives the account's slot back: with one connection per
// account and address, another client of the account may then log in.
func TestConnectionLimitUnauthenticate(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.ConnLimits = throttle.ConnLimits{PerAccountAddress: 1} })
	c := e.dial(t, "nam", nil)
	if _, err := e.dialFrom(t, "127.0.0.1", "nam@example.test", nil); !isCode(err, imap.ResponseCodeLimit) {
		t.Fatalf("second connection of the account: %v", err)
	}
	if err := c.Unauthenticate().Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dialFrom(t, "127.0.0.1", "nam@example.test", nil); err != nil {
		t.Fatalf("after UNAUTHENTICATE: %v", err)
	}
}
