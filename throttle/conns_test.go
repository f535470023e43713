package throttle

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sealmail/internal/testlog"
)

func limitOf(err error) string {
	var le *LimitError
	if errors.As(err, &le) {
		return le.Limit
	}
	return ""
}

func TestConns(t *testing.T) {
	var log testlog.Capture
	now := time.Unix(1e9, 0)
	c := &Conns{Limits: ConnLimits{PerAddress: 2, PerAccountAddress: 2, PerAccount: 3, Total: 8}, Protocol: "imap",
		Logger: log.Logger(slog.LevelInfo), Now: func() time.Time { return now }}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	open := func(addr netip.Addr) *Conn {
		t.Helper()
		x, err := c.Open(addr)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	a1, a2 := open(a), open(a)
	if _, err := c.Open(a); limitOf(err) != LimitPerAddress {
		t.Fatalf("third unauthenticated connection: %v", err)
	}
	// Logging in frees the address's unauthenticated slot.
	if err := a1.Login("nam@x"); err != nil {
		t.Fatal(err)
	}
	a3 := open(a)
	if err := a2.Login("nam@x"); err != nil {
		t.Fatal(err)
	}
	if err := a3.Login("nam@x"); limitOf(err) != LimitPerAccountAddress {
		t.Fatalf("third login of one account from one address: %v", err)
	}
	// Refused, a3 still counts as unauthenticated; another account is unaffected.
	a4 := open(a)
	if _, err := c.Open(a); limitOf(err) != LimitPerAddress {
		t.Fatalf("refused login freed its slot: %v", err)
	}
	if err := a3.Login("lan@x"); err != nil {
		t.Fatal(err)
	}
	b1, b2 := open(b), open(b)
	if err := b1.Login("nam@x"); err != nil {
		t.Fatal(err)
	}
	if err := b2.Login("nam@x"); limitOf(err) != LimitPerAccount {
		t.Fatalf("fourth login of one account: %v", err)
	}
	// UNAUTHENTICATE puts a connection back among the unauthenticated.
	b1.Logout()
	if err := b2.Login("nam@x"); err != nil {
		t.Fatalf("after logout: %v", err)
	}
	b3 := open(b)
	if _, err := c.Open(b); limitOf(err) != LimitPerAddress {
		t.Fatalf("logout did not count as unauthenticated again: %v", err)
	}
	// Total: a1-a4, b1-b3 are open; one more fills it.
	x := open(netip.MustParseAddr("192.0.2.4"))
	if _, err := c.Open(netip.MustParseAddr("192.0.2.6")); limitOf(err) != LimitTotal {
		t.Fatalf("over the total: %v", err)
	}
	x.Close()
	x.Close() // twice is harmless
	open(netip.MustParseAddr("192.0.2.6")).Close()

	lines := log.Grep()
	want := []string{
		`level=WARN msg="connection refused" protocol=imap limit=max-unauthenticated-per-ip max=2 ip=192.0.2.1`,
		`level=WARN msg="connection refused" protocol=imap limit=max-connections-per-user-ip max=2 ip=192.0.2.1 user=nam@x`,
		// The second per-address refusal of 192.0.2.1 within a minute is held back.
		`level=WARN msg="connection refused" protocol=imap limit=max-connections-per-user max=3 ip=192.0.2.2 user=nam@x`,
		`level=WARN msg="connection refused" protocol=imap limit=max-unauthenticated-per-ip max=2 ip=192.0.2.2`,
		`level=WARN msg="connection refused" protocol=imap limit=max-connections max=8 ip=192.0.2.6`,
	}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s", strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, want[i]) {
			t.Errorf("log line %d:\n%s\nwant suffix\n%s", i, l, want[i])
		}
	}
	// A minute later the next refusal is logged with the count held back.
	now = now.Add(time.Minute)
	b3.Close()
	a5 := open(a)
	if _, err := c.Open(a); err == nil {
		t.Fatal("over the limit a minute later")
	}
	if l := log.Grep(); len(l) != len(want)+1 || !strings.HasSuffix(l[len(l)-1], "ip=192.0.2.1 suppressed=1") {
		t.Errorf("after a minute: %q", l[len(want):])
	}

	for _, y := range []*Conn{a1, a2, a3, a4, a5, b1, b2, b3} {
		y.Close()
	}
	if c.acct["nam@x"] != 0 || c.pre[ClientKey(a)] != 0 || len(c.acctAddr) != 0 {
		t.Errorf("counts left after close: %v %v %v", c.acct, c.pre, c.acctAddr)
	}
}

func TestConnsPeerLimitAndIPv6(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.7")
	c := &Conns{Limits: ConnLimits{PerAddress: 1}, Logger: slog.New(slog.DiscardHandler),
		AddressLimit: func(a netip.Addr) int {
			if a == peer {
				return 3
			}
			return 0
		}}
	for range 3 {
		if _, err := c.Open(peer); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Open(peer); limitOf(err) != LimitPerPeer {
		t.Fatalf("fourth peer connection: %v", err)
	}
	// An IPv6 client is its /64; IPv4 mapped into IPv6 is the IPv4 address.
	if _, err := c.Open(netip.MustParseAddr("2001:db8:1:2::1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(netip.MustParseAddr("2001:db8:1:2:ffff::9")); limitOf(err) != LimitPerAddress {
		t.Fatalf("same /64: %v", err)
	}
	if _, err := c.Open(netip.MustParseAddr("2001:db8:1:3::1")); err != nil {
		t.Fatalf("other /64: %v", err)
	}
	if _, err := c.Open(netip.MustParseAddr("::ffff:192.0.2.9")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(netip.MustParseAddr("192.0.2.9")); limitOf(err) != LimitPerAddress {
		t.Fatalf("mapped address counted apart: %v", err)
	}
}

func TestLogGateBurst(t *testing.T) {
	var g logGate
	now := time.Unix(1e9, 0)
	n := 0
	for i := range 1000 {
		if ok, _ := g.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String(), now); ok {
			n++
		}
	}
	if n != logBurst {
		t.Errorf("%d lines let through in a minute from 1000 addresses, want %d", n, logBurst)
	}
	if ok, _ := g.allow("10.0.0.1", now.Add(time.Minute)); !ok {
		t.Error("no line a minute later")
	}
}
