package throttle

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// ConnLimits caps the connections of one protocol. They follow Postfix and
// Dovecot: a client address is limited only while it has not logged in (an
// agency's whole office may sit behind one NAT address), a logged-in account per
// address and overall (Dovecot's mail_max_userip_connections), and a global cap
// protects memory. A zero field takes the default of DefaultConnLimits.
type ConnLimits struct {
	// PerAddress caps connections not (yet) logged in from one client address
	// (an IPv6 client's /64): SMTP on the MX port, IMAP before LOGIN.
	PerAddress int
	// PerAccountAddress caps logged-in connections of one account from one address.
	PerAccountAddress int
	// PerAccount caps logged-in connections of one account from all addresses.
	PerAccount int
	// Total caps all connections of the protocol.
	Total int
}

// DefaultConnLimits are the defaults of config's [limits].
func DefaultConnLimits() ConnLimits {
	return ConnLimits{PerAddress: 100, PerAccountAddress: 20, PerAccount: 100, Total: 10000}
}

func (l ConnLimits) withDefaults() ConnLimits {
	d := DefaultConnLimits()
	for _, p := range []struct{ v, def *int }{{&l.PerAddress, &d.PerAddress}, {&l.PerAccountAddress, &d.PerAccountAddress},
		{&l.PerAccount, &d.PerAccount}, {&l.Total, &d.Total}} {
		if *p.v <= 0 {
			*p.v = *p.def
		}
	}
	return l
}

// The limits, named as the config keys that set them (in logs and for LimitError.Limit).
const (
	LimitTotal             = "max-connections"
	LimitPerAddress        = "max-unauthenticated-per-ip"
	LimitPerPeer           = "max-connections-per-peer-ip"
	LimitPerAccountAddress = "max-connections-per-user-ip"
	LimitPerAccount        = "max-connections-per-user"
)

// LimitError is a connection or login refused by a ConnLimits limit. Its
// message is meant for the client.
type LimitError struct {
	Limit   string // one of the Limit constants
	Max     int
	Addr    netip.Addr
	Account string // empty before login
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case LimitTotal:
		return "Too many connections to this server, try again later"
	case LimitPerAccountAddress:
		return fmt.Sprintf("Too many connections of this account from your address (limit %d): close another mail client or try again later", e.Max)
	case LimitPerAccount:
		return fmt.Sprintf("Too many connections of this account (limit %d): close another mail client or try again later", e.Max)
	}
	return fmt.Sprintf("Too many connections from your address (limit %d), try again later", e.Max)
}

// Conns counts the open connections of one protocol and refuses those over its
// Limits. Each refusal is logged as one WARN line, rate-limited per limit and
// address so that a flood cannot fill the disk.
type Conns struct {
	Limits ConnLimits
	// AddressLimit, if set, returns a PerAddress limit for particular
	// addresses (peer agencies on the MX port), or 0 for the default.
	AddressLimit func(netip.Addr) int
	Protocol     string       // in log lines: "imap", "smtp"
	Logger       *slog.Logger // nil means slog.Default()
	Now          func() time.Time
	// Metrics, if set, is told of connections opened, refused, logged in and closed.
	Metrics ConnMetrics

	once     sync.Once
	lim      ConnLimits
	mu       sync.Mutex
	total    int
	pre      map[string]int // by ClientKey
	acct     map[string]int
	acctAddr map[[2]string]int
	gate     logGate
}

func (c *Conns) init() {
	c.once.Do(func() {
		c.lim = c.Limits.withDefaults()
		c.pre = make(map[string]int)
		c.acct = make(map[string]int)
		c.acctAddr = make(map[[2]string]int)
	})
}

// ConnMetrics counts what Conns sees, for monitoring.
type ConnMetrics interface {
	Opened()
	Refused(limit string)
	LoggedIn()  // the connection became an account's session
	LoggedOut() // a session ended (its connection may go on)
	Closed()
}

// Conn is one connection counted by Conns, from Open until Close.
type Conn struct {
	c       *Conns
	addr    netip.Addr
	key     string
	account string // "" while not logged in
	closed  bool
}

// Open counts a new connection from addr, or returns a *LimitError.
func (c *Conns) Open(addr netip.Addr) (*Conn, error) {
	c.init()
	addr = addr.Unmap()
	key := ClientKey(addr)
	max := c.lim.PerAddress
	limit := LimitPerAddress
	if c.AddressLimit != nil {
		// Called outside mu: it may look things up.
		if n := c.AddressLimit(addr); n > 0 {
			max, limit = n, LimitPerPeer
		}
	}
	c.mu.Lock()
	var err *LimitError
	switch {
	case c.total >= c.lim.Total:
		err = &LimitError{Limit: LimitTotal, Max: c.lim.Total, Addr: addr}
	case c.pre[key] >= max:
		err = &LimitError{Limit: limit, Max: max, Addr: addr}
	default:
		c.total++
		c.pre[key]++
	}
	c.mu.Unlock()
	if err != nil {
		c.refused(err)
		return nil, err
	}
	if c.Metrics != nil {
		c.Metrics.Opened()
	}
	return &Conn{c: c, addr: addr, key: key}, nil
}

// Login moves the connection from its address's unauthenticated count to the
// account's counts, or returns a *LimitError and leaves it as it was. account
// must be canonical (as the store names it).
func (x *Conn) Login(account string) error {
	c := x.c
	c.mu.Lock()
	var err *LimitError
	aa := [2]string{account, x.key}
	switch {
	case x.closed || x.account != "":
		// Nothing to move: a second login is the protocol's business.
	case c.acctAddr[aa] >= c.lim.PerAccountAddress:
		err = &LimitError{Limit: LimitPerAccountAddress, Max: c.lim.PerAccountAddress, Addr: x.addr, Account: account}
	case c.acct[account] >= c.lim.PerAccount:
		err = &LimitError{Limit: LimitPerAccount, Max: c.lim.PerAccount, Addr: x.addr, Account: account}
	default:
		decr(c.pre, x.key)
		c.acct[account]++
		c.acctAddr[aa]++
		x.account = account
		if c.Metrics != nil {
			c.Metrics.LoggedIn()
		}
	}
	c.mu.Unlock()
	if err != nil {
		c.refused(err)
		return err
	}
	return nil
}

// Logout moves a logged-in connection back to its address's unauthenticated
// count (IMAP UNAUTHENTICATE). It never refuses: the connection is already open.
func (x *Conn) Logout() {
	c := x.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if x.closed || x.account == "" {
		return
	}
	x.uncountAccount()
	c.pre[x.key]++
}

// Close uncounts the connection. It may be called more than once.
func (x *Conn) Close() {
	c := x.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if x.closed {
		return
	}
	x.closed = true
	c.total--
	if c.Metrics != nil {
		c.Metrics.Closed()
	}
	if x.account != "" {
		x.uncountAccount()
	} else {
		decr(c.pre, x.key)
	}
}

// uncountAccount runs under c.mu.
func (x *Conn) uncountAccount() {
	if x.c.Metrics != nil {
		x.c.Metrics.LoggedOut()
	}
	decr(x.c.acct, x.account)
	decr(x.c.acctAddr, [2]string{x.account, x.key})
	x.account = ""
}

func decr[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
	} else {
		m[k]--
	}
}

func (c *Conns) refused(e *LimitError) {
	if c.Metrics != nil {
		c.Metrics.Refused(e.Limit)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	ok, suppressed := c.gate.allow(e.Limit+" "+ClientKey(e.Addr)+" "+e.Account, now())
	c.mu.Unlock()
	if !ok {
		return
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	attrs := []any{"protocol", c.Protocol, "limit", e.Limit, "max", e.Max, "ip", e.Addr.String()}
	if e.Account != "" {
		attrs = append(attrs, "user", e.Account)
	}
	if suppressed > 0 {
		// Refusals not logged since the last line of this limit and address.
		attrs = append(attrs, "suppressed", suppressed)
	}
	log.Warn("connection refused", attrs...)
}

// logGate rate-limits log lines: at most one per key per perKey, and at most
// burst lines per perKey over all keys. What it holds back is counted and
// reported with the next line let through for the key.
type logGate struct {
	windowStart time.Time
	lines       int
	keys        map[string]*gateEntry
}

type gateEntry struct {
	last       time.Time
	suppressed int
}

const (
	logPerKey   = time.Minute
	logBurst    = 100 // lines per logPerKey over all keys
	logMaxKeys  = 10000
	logSweepAge = 10 * logPerKey
)

func (g *logGate) allow(key string, now time.Time) (ok bool, suppressed int) {
	if g.keys == nil {
		g.keys = make(map[string]*gateEntry)
	}
	if now.Sub(g.windowStart) >= logPerKey {
		g.windowStart, g.lines = now, 0
	}
	e := g.keys[key]
	if e == nil {
		if len(g.keys) >= logMaxKeys {
			for k, e := range g.keys {
				if now.Sub(e.last) > logSweepAge {
					delete(g.keys, k)
				}
			}
		}
		if len(g.keys) >= logMaxKeys {
			return false, 0 // a flood from many addresses: the global burst already ran out
		}
		e = &gateEntry{}
		g.keys[key] = e
	} else if now.Sub(e.last) < logPerKey {
		e.suppressed++
		return false, 0
	}
	if g.lines >= logBurst {
		e.suppressed++
		return false, 0
	}
	g.lines++
	e.last = now
	suppressed, e.suppressed = e.suppressed, 0
	return true, suppressed
}

// ClientKey names the client an address stands for: an IPv4 address itself, an
// IPv6 address's /64, which is what one customer of an ISP typically gets.
func ClientKey(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is6() {
		p, err := addr.Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return addr.String()
}
