// Package throttle protects the daemons from clients that take too much: it
// limits connections (Conns) and password guessing (Logins), for SMTP, IMAP
// and anything else that checks a password.
package throttle

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Logins is the login throttle: it decides whether a password may be checked
// at all, before the costly hash runs, and it is shared by every protocol and
// connection, so parallel guesses are slowed together.
//
// Failures count against the account as the store names it (so every spelling
// of a name counts as one) and against the client address (an IPv6 client's
// /64, so one address cannot try many accounts quickly). After Free failures in
// Window, each further check must wait twice as long as the last, up to Max;
// an attempt that comes sooner fails at once, without checking the password.
// At most Budget wrong passwords per account are checked per Window, whatever
// the number of addresses and connections.
//
// The account's owner must not be locked out by someone guessing elsewhere:
// addresses from which the account logged in within KnownFor keep Reserve of
// the budget for themselves (and are not slowed by their address's failures
// at other accounts); the others share the rest.
type Logins struct {
	Free     int           // failures before waits begin, per account and per address
	Max      time.Duration // longest wait between two checks
	Window   time.Duration // how long a failure counts
	Budget   int           // wrong passwords checked per account per Window
	Reserve  int           // of Budget, kept for addresses known to the account
	KnownFor time.Duration // how long a successful login makes its address known
	// AddressFree is Free for a client address (over all accounts), higher
	// than Free because a whole office may share one address.
	AddressFree int
	Now         func() time.Time // nil means time.Now; tests move time
	Logger      *slog.Logger     // refusals, rate-limited; nil means slog.Default()
	// Counted, if set, is told the outcome of every login: "success",
	// "failure" (a wrong password) or "throttled" (refused unchecked). It
	// may be called with Logins' lock held: it must not call back.
	Counted func(outcome string)

	mu       sync.Mutex
	accounts map[string]*account // by canonical name; overflowKey once full
	addrs    map[string]*bucket  // by ClientKey
	swept    time.Time
	gate     logGate
}

// NewLogins returns a throttle with production defaults: waits after 5
// failures up to 1 minute apart, at most 30 wrong passwords per account per 10
// minutes of which 10 are kept for addresses that logged in within 30 days.
func NewLogins() *Logins {
	return &Logins{Free: 5, Max: time.Minute, Window: 10 * time.Minute, Budget: 30, Reserve: 10,
		KnownFor: 30 * 24 * time.Hour, AddressFree: 20}
}

// account is what Logins knows of one account name.
type account struct {
	strangers bucket // attempts from addresses not known to the account
	known     bucket // attempts from known addresses, all together
	addrs     []knownAddr
}

type knownAddr struct {
	key  string
	last time.Time
}

// bucket holds the times of checks that did not succeed (failures, and checks
// in progress), oldest first, within Window.
type bucket struct {
	evals []time.Time
	last  time.Time // of the latest check begun
}

const (
	maxAccounts  = 100000 // names remembered; more share overflowKey's budget
	maxAddrs     = 100000
	maxKnown     = 8 // addresses remembered per account
	overflowKey  = "\x00overflow"
	overflowAddr = "\x00overflow"
)

// ErrThrottled is the error of Begin when an attempt must wait.
var ErrThrottled = errors.New("too many failed logins")

// ThrottledError tells when to try again. Its message is meant for the client.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("Too many failed logins, try again in %d s", int(e.RetryAfter.Round(time.Second)/time.Second)+1)
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// Attempt is a password check that Begin admitted. Report its outcome exactly
// once: Succeed, Fail, or Cancel if the check could not be made.
type Attempt struct {
	l       *Logins
	acct    string
	addr    string
	known   bool
	at      time.Time
	settled bool
}

func (l *Logins) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Begin asks to check a password for account (its canonical name, as the
// store's login resolves it) from addr. It returns a *ThrottledError, without
// counting anything, when the attempt must wait; the caller then answers the
// client at once and must not check the password.
func (l *Logins) Begin(acct string, addr netip.Addr) (*Attempt, error) {
	now := l.now()
	addrKey := ClientKey(addr)
	l.mu.Lock()
	l.sweep(now)
	a := l.account(acct)
	if a == nil {
		acct = overflowKey
		a = l.account(acct)
	}
	known := a.knows(addrKey, now, l.KnownFor)
	b := &a.strangers
	budget := l.Budget - l.Reserve
	if known {
		b, budget = &a.known, l.Reserve
	}
	wait := b.wait(now, l.Window, l.Free, budget, l.Max)
	var ab *bucket
	if !known {
		// A known address is not slowed by its failures at other accounts:
		// the office's other users mistyping must not keep this one out.
		ab = l.addr(addrKey)
		wait = max(wait, ab.wait(now, l.Window, l.AddressFree, -1, l.Max))
	}
	if wait > 0 {
		ok, suppressed := l.gate.allow("login "+acct+" "+addrKey, now)
		l.mu.Unlock()
		if ok {
			attrs := []any{"user", acct, "ip", addr.String(), "retry_after", wait.Round(time.Second)}
			if suppressed > 0 {
				attrs = append(attrs, "suppressed", suppressed)
			}
			l.log().Warn("login throttled", attrs...)
		}
		l.count("throttled")
		return nil, &ThrottledError{RetryAfter: wait}
	}
	// The check counts as a failure of the account until it succeeds, so
	// that checks begun in parallel see each other. The address counts only
	// failures: a whole office behind one NAT address logs in at once in the
	// morning, and its checks in flight are not evidence against it.
	b.begin(now)
	l.mu.Unlock()
	return &Attempt{l: l, acct: acct, addr: addrKey, known: known, at: now}, nil
}

// Fail records a wrong password.
func (t *Attempt) Fail() {
	now := t.l.now()
	t.l.mu.Lock()
	settled := t.settled
	t.settled = true
	if !settled && !t.known {
		t.l.addr(t.addr).begin(now)
	}
	t.l.mu.Unlock()
	if !settled {
		t.l.count("failure")
	}
}

func (l *Logins) count(outcome string) {
	if l.Counted != nil {
		l.Counted(outcome)
	}
}

// Succeed records a right password: the check does not count as a failure
// and the address becomes known to the account. Evidence against the account
// from other attempts stays: a guesser cannot clear it by logging in to an
// account of their own, nor by waiting for the owner to log in.
func (t *Attempt) Succeed() {
	l := t.l
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.settled {
		return
	}
	t.settled = true
	t.uncount()
	l.count("success")
	if t.acct == overflowKey {
		return
	}
	a := l.account(t.acct)
	if a == nil {
		return
	}
	if i := slices.IndexFunc(a.addrs, func(k knownAddr) bool { return k.key == t.addr }); i >= 0 {
		a.addrs[i].last = now
		return
	}
	if len(a.addrs) >= maxKnown {
		// Forget the address used least recently.
		oldest := 0
		for i, k := range a.addrs {
			if k.last.Before(a.addrs[oldest].last) {
				oldest = i
			}
		}
		a.addrs = slices.Delete(a.addrs, oldest, oldest+1)
	}
	a.addrs = append(a.addrs, knownAddr{t.addr, now})
}

// Cancel forgets an attempt whose password could not be checked (the store
// failed): it is neither a failure nor a success.
func (t *Attempt) Cancel() {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	if !t.settled {
		t.settled = true
		t.uncount()
	}
}

// uncount runs under l.mu.
func (t *Attempt) uncount() {
	l := t.l
	if a := l.accounts[t.acct]; a != nil {
		if t.known {
			a.known.remove(t.at)
		} else {
			a.strangers.remove(t.at)
		}
	}
}

func (l *Logins) log() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// account returns the record of name, making one if there is room; nil if not.
func (l *Logins) account(name string) *account {
	if l.accounts == nil {
		l.accounts = make(map[string]*account)
		l.addrs = make(map[string]*bucket)
	}
	a := l.accounts[name]
	if a == nil {
		if len(l.accounts) >= maxAccounts && name != overflowKey {
			return nil
		}
		a = &account{}
		l.accounts[name] = a
	}
	return a
}

func (l *Logins) addr(key string) *bucket {
	b := l.addrs[key]
	if b == nil {
		if len(l.addrs) >= maxAddrs {
			key = overflowAddr
			if b = l.addrs[key]; b != nil {
				return b
			}
		}
		b = &bucket{}
		l.addrs[key] = b
	}
	return b
}

// sweep forgets what no longer counts, once per Window.
func (l *Logins) sweep(now time.Time) {
	if now.Sub(l.swept) < l.Window {
		return
	}
	l.swept = now
	for k, a := range l.accounts {
		a.strangers.expire(now, l.Window)
		a.known.expire(now, l.Window)
		a.addrs = slices.DeleteFunc(a.addrs, func(k knownAddr) bool { return now.Sub(k.last) > l.KnownFor })
		if len(a.strangers.evals) == 0 && len(a.known.evals) == 0 && len(a.addrs) == 0 {
			delete(l.accounts, k)
		}
	}
	for k, b := range l.addrs {
		if b.expire(now, l.Window); len(b.evals) == 0 {
			delete(l.addrs, k)
		}
	}
}

func (a *account) knows(addr string, now time.Time, knownFor time.Duration) bool {
	for _, k := range a.addrs {
		if k.key == addr && now.Sub(k.last) <= knownFor {
			return true
		}
	}
	return false
}

func (b *bucket) expire(now time.Time, window time.Duration) {
	i := 0
	for i < len(b.evals) && now.Sub(b.evals[i]) >= window {
		i++
	}
	b.evals = slices.Delete(b.evals, 0, i)
}

// wait returns how long a new check must wait: until the budget (if not
// negative) has room, and, after free failures, until the last check's wait is over.
func (b *bucket) wait(now time.Time, window time.Duration, free, budget int, maxWait time.Duration) time.Duration {
	b.expire(now, window)
	n := len(b.evals)
	var w time.Duration
	switch {
	case budget == 0:
		w = window
	case budget > 0 && n >= budget:
		w = b.evals[n-budget].Add(window).Sub(now)
	}
	if n >= free {
		d := min(time.Second<<min(n-free, 30), maxWait)
		w = max(w, b.last.Add(d).Sub(now))
	}
	return max(w, 0)
}

func (b *bucket) begin(now time.Time) {
	b.evals = append(b.evals, now)
	b.last = now
}

// remove takes back the check begun at t.
func (b *bucket) remove(t time.Time) {
	for i := len(b.evals) - 1; i >= 0; i-- {
		if b.evals[i].Equal(t) {
			b.evals = slices.Delete(b.evals, i, i+1)
			return
		}
	}
}
