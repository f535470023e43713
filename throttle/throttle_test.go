package throttle

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func ip(s string) netip.Addr         { return netip.MustParseAddr(s) }
func throttled(err error) bool       { return errors.Is(err, ErrThrottled) }
func newTestLogins(c *clock) *Logins {
	l := NewLogins()
	l.Now = c.now
	l.Logger = slog.New(slog.DiscardHandler)
	return l
}
func fail(t *testing.T, l *Logins, acct, addr string) error {
	t.Helper()
	a, err := l.Begin(acct, ip(addr))
	if err == nil {
		a.Fail()
	}
	return err
}

// After Free failures the next check waits, and an attempt that comes sooner
// fails at once: attempts in parallel are slowed together.
func TestLoginsWaitAndFailFast(t *testing.T) {
	c := &clock{time.Unix(1e9, 0)}
	l := newTestLogins(c)
	for i := range 5 {
		if err := fail(t, l, "nam@x", fmt.Sprintf("192.0.2.%d", i)); err != nil {
			t.Fatalf("free failure %d: %v", i, err)
		}
	}
	a, err := l.Begin("nam@x", ip("192.0.2.9"))
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != time.Second {
		t.Fatalf("6th attempt at once: %v %v", a, err)
	}
	c.add(time.Second)
	a, err = l.Begin("nam@x", ip("192.0.2.9"))
	if err != nil {
		t.Fatal(err)
	}
	// While that check runs, a parallel one must wait its turn.
	if _, err := l.Begin("nam@x", ip("192.0.2.10")); !throttled(err) {
		t.Fatalf("parallel attempt: %v", err)
	}
	a.Fail()
	c.add(time.Second)
	if _, err := l.Begin("nam@x", ip("192.0.2.9")); !throttled(err) {
		t.Fatalf("wait did not double: %v", err)
	}
	// Another account is not slowed.
	if err := fail(t, l, "lan@x", "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
}

// Whatever the number of addresses, at most Budget-Reserve wrong passwords
// from strangers are checked per Window; the owner's known address keeps the
// Reserve; the owner's success clears nothing; another account's success from
// the attacker's address clears nothing either.
func TestLoginsBudgetAndKnownAddress(t *testing.T) {
	c := &clock{time.Unix(1e9, 0)}
	l := newTestLogins(c)
	owner := "192.0.2.200"
	a, err := l.Begin("nam@x", ip(owner))
	if err != nil {
		t.Fatal(err)
	}
	a.Succeed()

	checked := map[time.Time]int{}
	start := c.t
	for c.t.Sub(start) < 30*time.Minute {
		for i := range 20 {
			addr := fmt.Sprintf("198.51.100.%d", i)
			if err := fail(t, l, "nam@x", addr); err == nil {
				checked[c.t]++
			}
			// The attacker's own account, logged in from the same address.
			if b, err := l.Begin("mallory@x", ip(addr)); err == nil {
				b.Succeed()
			}
		}
		if c.t.Sub(start) == 15*time.Minute {
			// The owner logs in mid-attack from their usual address.
			b, err := l.Begin("nam@x", ip(owner))
			if err != nil {
				t.Fatalf("owner locked out: %v", err)
			}
			b.Succeed()
		}
		c.add(time.Second)
	}
	for t0 := start; t0.Before(c.t); t0 = t0.Add(30 * time.Second) {
		n := 0
		for at, k := range checked {
			if !at.Before(t0) && at.Before(t0.Add(10*time.Minute)) {
				n += k
			}
		}
		if n > 20 {
			t.Fatalf("%d wrong passwords from strangers checked in the 10 minutes from %v", n, t0.Sub(start))
		}
	}
	if len(checked) < 20 {
		t.Errorf("only %d checks in 30 minutes: the throttle refuses everything", len(checked))
	}
	// The owner's address still has its own allowance, even when mistyping.
	for range 5 {
		if err := fail(t, l, "nam@x", owner); err != nil {
			t.Fatalf("owner's typo: %v", err)
		}
	}
	c.add(time.Second)
	if a, err := l.Begin("nam@x", ip(owner)); err != nil {
		t.Fatalf("owner after typos: %v", err)
	} else {
		a.Succeed()
	}
}

// An address guessing at many accounts is slowed too; an IPv6 client is its
// /64; a check that could not be made (Cancel) counts for nothing.
func TestLoginsPerAddress(t *testing.T) {
	c := &clock{time.Unix(1e9, 0)}
	l := newTestLogins(c)
	for i := range 20 {
		if err := fail(t, l, fmt.Sprintf("u%d@x", i), fmt.Sprintf("2001:db8:0:1::%x", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fail(t, l, "u99@x", "2001:db8:0:1:ffff::1"); !throttled(err) {
		t.Fatalf("21st account from one /64: %v", err)
	}
	if err := fail(t, l, "u99@x", "2001:db8:0:2::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	for range 10 {
		a, err := l.Begin("v@x", ip("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		a.Cancel()
	}
	if len(l.accounts["v@x"].strangers.evals) != 0 {
		t.Error("cancelled checks counted")
	}
	// Failures are forgotten after the Window.
	c.add(10 * time.Minute)
	if err := fail(t, l, "u99@x", "2001:db8:0:1::1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// A whole office behind one address logs in at once: checks in flight for
// different accounts are not failures of the address, and its right
// passwords pass; only wrong ones slow the address down.
func TestLoginsOfficeLogsInAtOnce(t *testing.T) {
	c := &clock{time.Unix(1e9, 0)}
	l := newTestLogins(c)
	var tries []*Attempt
	for i := range 300 {
		a, err := l.Begin(fmt.Sprintf("staff%d@x", i), ip("192.0.2.7"))
		if err != nil {
			t.Fatalf("login %d of the office: %v", i+1, err)
		}
		tries = append(tries, a)
	}
	for _, a := range tries {
		a.Succeed()
	}
	for i := range 20 {
		if err := fail(t, l, fmt.Sprintf("u%d@x", i), "192.0.2.8"); err != nil {
			t.Fatal(err)
		}
	}
	if err := fail(t, l, "u99@x", "192.0.2.8"); !throttled(err) {
		t.Fatalf("21st failure from one address: %v", err)
	}
}
