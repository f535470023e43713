package smtpd

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/internal/testlog"
	"sealmail/mailstore"
	"sealmail/throttle"
)

func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A peer agency's relay (127.0.0.2, from 'peer add --relay') may hold more MX
// connections than an unknown address (127.0.0.3); refusals are 421 4.7.0
// naming the limit, and logged.
func TestConnectionLimitsPeer(t *testing.T) {
	var log testlog.Capture
	srv := &Server{ConnLimits: throttle.ConnLimits{PerAddress: 2}, PeerConnsPerIP: 4,
		Logger: log.Logger(slog.LevelWarn)}
	e := start(t, srv)
	if err := e.store.AddPeer(context.Background(), mailstore.Peer{Domain: "sotc.example.test", Relay: "127.0.0.2:25"}); err != nil {
		t.Fatal(err)
	}
	e.srv.init()
	e.srv.peers.load()

	for range 4 {
		dialRawConn(t, dialFrom(t, "127.0.0.2", e.mx))
	}
	r := dialRawConnNoGreeting(t, dialFrom(t, "127.0.0.2", e.mx))
	if code, msg := r.reply(); code != 421 || !strings.HasPrefix(msg, "4.7.0") || !strings.Contains(msg, "(limit 4)") {
		t.Errorf("5th connection of a peer: %d %s", code, msg)
	}
	for range 2 {
		dialRawConn(t, dialFrom(t, "127.0.0.3", e.mx))
	}
	r = dialRawConnNoGreeting(t, dialFrom(t, "127.0.0.3", e.mx))
	if code, msg := r.reply(); code != 421 || !strings.HasPrefix(msg, "4.7.0") || !strings.Contains(msg, "(limit 2)") {
		t.Errorf("3rd connection of an unknown address: %d %s", code, msg)
	}
	for _, want := range [][]string{
		{"level=WARN", "protocol=smtp", "limit=max-connections-per-peer-ip", "max=4", "ip=127.0.0.2"},
		{"level=WARN", "protocol=smtp", "limit=max-unauthenticated-per-ip", "max=2", "ip=127.0.0.3"},
	} {
		if got := log.Grep(want...); len(got) != 1 {
			t.Errorf("log lines %q: %q", want, got)
		}
	}
}

// After AUTH a submission connection counts against its account, not its
// address: the 3rd connection of a@ from one address is refused (454, since
// the client may stay and retry), b@ is not, and the address's unauthenticated
// allowance is free again.
func TestConnectionLimitsSubmission(t *testing.T) {
	var log testlog.Capture
	srv := &Server{ConnLimits: throttle.ConnLimits{PerAddress: 2, PerAccountAddress: 2},
		Logger: log.Logger(slog.LevelWarn)}
	e := start(t, srv)
	e.dialSubmit(t, "a@example.test")
	must(t, dialTLS(t, e.subs, e.clientTLS).Auth(sasl.NewPlainClient("", "a@example.test", "pw")))
	third := dialTLS(t, e.subs, e.clientTLS)
	se := wantCode(t, third.Auth(sasl.NewPlainClient("", "a@example.test", "pw")), 454, "4.7.0")
	if !strings.Contains(se.Message, "limit 2") {
		t.Errorf("refusal: %q", se.Message)
	}
	e.dialSubmit(t, "b@example.test")
	if got := log.Grep("level=WARN", "protocol=smtp", "limit=max-connections-per-user-ip", "max=2", "ip=127.0.0.1", "user=a@example.test"); len(got) != 1 {
		t.Errorf("WARN lines: %q", got)
	}
	// 'third' is still open and unauthenticated: with PerAddress 2, one more
	// connection that has not logged in fits, the next does not.
	c, err := smtp.Dial(e.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatal(err)
	}
	r := dialRawConnNoGreeting(t, dialFrom(t, "127.0.0.1", e.mx))
	if code, _ := r.reply(); code != 421 {
		t.Errorf("over the unauthenticated limit: %d", code)
	}
}
