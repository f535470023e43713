// Package smtpd receives mail over SMTP: from other servers on the MX port (25)
// for the domains hosted here, and from staff on the submission ports (587 with
// STARTTLS, 465 with implicit TLS) after they authenticate. go-smtp speaks the
// protocol; this package decides who may send what to whom and hands accepted
// messages to the mail store (local recipients) or to the outbound queue.
//
// A message is acknowledged with 250 only once it is durable for every
// recipient: Store.Accept has committed it to the local mailboxes and the
// outbound queue, in one transaction.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/throttle"
	"sealmail/tlslog"
)

// ErrServerClosed is returned by ServeMX and ServeSubmission after Shutdown.
var ErrServerClosed = errors.New("smtpd: server closed")

// Queue is the outbound relay. The store queues a message for remote
// recipients in the same transaction that delivers it to local ones
// (Store.Accept); the relay is then woken to send it.
type Queue interface {
	Wake()
}

// InboundChecker judges mail arriving on the MX port (DKIM, SPF, DMARC).
type InboundChecker interface {
	// Check reads the message from msg and returns a header field to
	// prepend (e.g. "Authentication-Results: ...", with or without its line
	// ending) and a verdict.
	Check(ctx context.Context, ip net.IP, helo, mailFrom string, msg io.Reader) (header string, v mailauth.Verdict, reason string)
}

// Server receives mail for one store. Zero limits take the defaults below, which
// match config.Default.
type Server struct {
	Store *mailstore.Store
	// TLSConfig enables STARTTLS, and is required for submission: staff
	// passwords never cross the network in clear.
	TLSConfig *tls.Config
	// Hostname names this server in the greeting and in Received: fields;
	// empty means the system's host name.
	Hostname string
	Logger   *slog.Logger // nil means slog.Default()
	// MaxMessageSize is the largest message accepted, in bytes; zero means 50 MiB.
	MaxMessageSize int64
	// MaxRecipients caps RCPT commands per message; zero means 1000.
	MaxRecipients int
	// CommandTimeout bounds the time a client takes over a whole command line
	// (from when the server waits for it), each wait for the bytes of a
	// message, and the reading of a reply; zero means 5 minutes.
	CommandTimeout time.Duration
	// ConnLimits caps simultaneous connections over all ports of this Server:
	// per address before AUTH (all of the MX port), per account after; zero
	// fields take throttle.DefaultConnLimits.
	ConnLimits throttle.ConnLimits
	// PeerConnsPerIP replaces ConnLimits.PerAddress for the relay addresses of
	// peer agencies, so a burst of official documents is not throttled like
	// spam; zero means 500.
	PeerConnsPerIP int
	// Resolver finds the addresses of peers' relay host names; nil counts only
	// relays given as IP addresses as peers.
	Resolver interface {
		LookupIP(ctx context.Context, host string) ([]net.IP, error)
	}
	// MinDataRate is the slowest a message may come, in bytes per second on
	// average since its start, once CommandTimeout has passed; zero means
	// 1 KiB/s. A client sending a byte every few seconds cannot hold a
	// connection (and its share of MaxInFlight) for ever.
	MinDataRate int64
	// Logins slows password guessing; share it with the IMAP server. Nil gets a
	// private one with throttle's defaults.
	Logins *throttle.Logins
	// TLSFailures is told of failed TLS handshakes (nil: they are not reported).
	TLSFailures *tlslog.Reporter
	// ConnMetrics, if set, counts connections and sessions (monitoring).
	ConnMetrics throttle.ConnMetrics
	// Replied, if set, is told of every reply: the listener ("mx" or
	// "submission"), the command answered ("" for the greeting), the code
	// and the enhanced code ("5.1.1"): monitoring.
	Replied func(listener, command string, code int, enhanced string)
	// Queue takes messages for remote recipients. Nil: remote recipients are
	// refused at RCPT with a temporary error, never dropped.
	Queue Queue
	// Inbound, if set, checks mail arriving on the MX port.
	Inbound InboundChecker
	// Registry numbers, seals and verifies official documents; nil passes them
	// as ordinary mail.
	Registry *registry.Registry
	// Delivered, if set, is told of every message stored in local inboxes
	// (not quarantined), once it is durable and before the client hears so:
	// the envelope sender, the header as stored, the accounts that got it.
	// Out-of-office replies (package vacation) start there.
	Delivered func(ctx context.Context, from string, header []byte, to []mailstore.Account)
	// SpoolDir holds the files of messages being received past their first
	// 256 KiB (see spool.go); serve gives a directory inside the data
	// directory. Empty means the system's temporary directory.
	SpoolDir string
	// MaxInFlight caps the total size of the messages being received or
	// delivered at once; zero means 1 GiB.
	MaxInFlight int64

	once   sync.Once
	host   string
	log    *slog.Logger
	logins *throttle.Logins
	conns  *throttle.Conns
	peers  peerAddrs

	spoolDir string
	spoolErr error
	memory   budget // in-memory message buffers
	inflight budget // messages being received or delivered
	loads    loads  // spooled messages loaded for delivery

	closed  atomic.Bool // read on every client read, so not under mu
	mu      sync.Mutex
	servers []*smtp.Server
	open    map[*conn]struct{}
}

const (
	defaultMaxMessageSize = 50 << 20
	defaultMaxRecipients  = 1000
	defaultCommandTimeout = 5 * time.Minute
	defaultPeerConnsPerIP = 500 // config.Default's limits.max-connections-per-peer-ip
	defaultMaxInFlight    = 1 << 30
	defaultMinDataRate    = 1 << 10

	// maxLineLength bounds a line, in commands and messages alike. RFC 5322
	// says 998, but mailers write a To: naming hundreds of staff on one line,
	// and go-smtp's default of 2000 would refuse such a circular.
	maxLineLength = 1 << 20
)

func (s *Server) init() {
	s.once.Do(func() {
		s.host = s.Hostname
		if s.host == "" {
			s.host, _ = os.Hostname()
		}
		if s.host == "" {
			s.host = "localhost"
		}
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.Default()
		}
		s.logins = s.Logins
		if s.logins == nil {
			s.logins = throttle.NewLogins()
		}
		s.peers.srv = s
		s.conns = &throttle.Conns{Limits: s.ConnLimits, AddressLimit: s.peers.limit, Protocol: "smtp", Logger: s.log,
			Metrics: s.ConnMetrics}
		s.open = make(map[*conn]struct{})
		s.memory.max = maxMemInFlight
		s.inflight.max = s.MaxInFlight
		if s.inflight.max <= 0 {
			s.inflight.max = defaultMaxInFlight
		}
		s.loads.max = s.maxMessageSize()
		s.loads.cond = sync.NewCond(&s.loads.mu)
		s.spoolDir = s.SpoolDir
		if s.spoolDir == "" {
			s.spoolDir = os.TempDir()
		} else {
			s.spoolErr = cleanSpool(s.spoolDir)
		}
	})
}

func (s *Server) maxMessageSize() int64 {
	if s.MaxMessageSize > 0 {
		return s.MaxMessageSize
	}
	return defaultMaxMessageSize
}

func (s *Server) commandTimeout() time.Duration {
	if s.CommandTimeout > 0 {
		return s.CommandTimeout
	}
	return defaultCommandTimeout
}

// role is the port a session came in on; it decides the rules.
type role int

const (
	roleMX role = iota
	roleSubmission
)

func (r role) String() string {
	if r == roleMX {
		return "mx"
	}
	return "submission"
}

// ServeMX receives mail from other servers for the hosted domains (port 25).
// It offers STARTTLS when TLSConfig is set, and never AUTH.
func (s *Server) ServeMX(l net.Listener) error {
	return s.serve(l, roleMX, false)
}

// ServeSubmission receives mail from staff (port 587 with STARTTLS, or 465 with
// implicitTLS). It requires TLSConfig.
func (s *Server) ServeSubmission(l net.Listener, implicitTLS bool) error {
	if s.TLSConfig == nil {
		return errors.New("smtpd: submission needs a TLS configuration")
	}
	return s.serve(l, roleSubmission, implicitTLS)
}

func (s *Server) serve(l net.Listener, r role, implicitTLS bool) error {
	s.init()
	if s.spoolErr != nil {
		return s.spoolErr
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return s.newSession(c, r), nil
	}))
	srv.Domain = s.host
	srv.TLSConfig = s.TLSConfig
	srv.MaxMessageBytes = s.maxMessageSize()
	srv.MaxRecipients = s.MaxRecipients
	if srv.MaxRecipients <= 0 {
		srv.MaxRecipients = defaultMaxRecipients
	}
	// A command line must come whole within the timeout; a message, at
	// MinDataRate once the timeout has passed (patched go-smtp).
	srv.ReadTimeout = s.commandTimeout()
	srv.MinDataRate = s.MinDataRate
	if srv.MinDataRate <= 0 {
		srv.MinDataRate = defaultMinDataRate
	}
	srv.WriteTimeout = s.commandTimeout()
	srv.MaxLineLength = maxLineLength
	srv.EnableSMTPUTF8 = true
	// The MX port never authenticates anyone; letting go-smtp pass AUTH through
	// to the session there, TLS or not, makes every attempt get the same clear
	// refusal (session.Auth) rather than a "TLS required" that promises more.
	srv.AllowInsecureAuth = r == roleMX
	srv.ErrorLog = errorLog{s.log}
	srv.TLSHandshakeFailed = func(c net.Conn, err error) { s.TLSFailures.Failed("smtp", c, err) }
	if s.Replied != nil {
		listener := r.String()
		srv.Replied = func(cmd string, code int, e smtp.EnhancedCode) {
			enhanced := ""
			if e != smtp.NoEnhancedCode {
				enhanced = fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
			}
			s.Replied(listener, cmd, code, enhanced)
		}
	}

	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()

	var tlsConfig *tls.Config
	if implicitTLS {
		tlsConfig = s.TLSConfig
	}
	err := srv.Serve(&listener{Listener: l, srv: s, tls: tlsConfig})
	if s.closed.Load() {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections, lets messages being delivered finish
// and get their reply, closes the other connections, and waits for their
// handlers to return or ctx to end. A client cut off in mid-transfer got no 250,
// so it will send again: nothing acknowledged is lost.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closed.Store(true)
	servers := s.servers
	for c := range s.open {
		c.wake()
	}
	s.mu.Unlock()

	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.Shutdown(ctx) }()
	}
	var first error
	for range servers {
		// smtp.ErrServerClosed: an earlier Shutdown got there first;
		// net.ErrClosed: that server's listener had already gone (go-smtp
		// closes every listener it ever served, dead or not).
		if err := <-errc; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && first == nil {
			first = err
		}
	}
	return first
}

// listener counts connections per client address, refuses those over the cap,
// and wraps the rest so that Shutdown can interrupt their reads.
type listener struct {
	net.Listener
	srv *Server
	tls *tls.Config // non-nil for implicit TLS
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, _ := netip.AddrFromSlice(remoteIP(nc))
		slot, err := l.srv.conns.Open(ip.Unmap())
		if err != nil {
			go l.refuse(nc, err)
			continue
		}
		c := &conn{Conn: nc, srv: l.srv, slot: slot}
		l.srv.mu.Lock()
		if l.srv.closed.Load() {
			l.srv.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		l.srv.open[c] = struct{}{}
		l.srv.mu.Unlock()
		if l.tls != nil {
			return tls.Server(c, l.tls), nil
		}
		return c, nil
	}
}

// refuse tells a client over a connection limit why it is turned away (the
// limit logged it). It runs on its own goroutine so a slow client cannot hold
// up Accept.
func (l *listener) refuse(nc net.Conn, why error) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	var w net.Conn = nc
	if l.tls != nil {
		tc := tls.Server(nc, l.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		w = tc
	}
	fmt.Fprintf(w, "421 4.7.0 %s %s\r\n", l.srv.host, why)
}

// conn lets Shutdown and end interrupt reads and releases the client's
// connection count when closed. go-smtp sets the read deadlines.
type conn struct {
	net.Conn
	srv  *Server
	slot *throttle.Conn

	mu     sync.Mutex
	closed bool
	ended  atomic.Pointer[smtp.SMTPError] // the reply that ends the connection (end)
}

func (c *conn) Read(b []byte) (int, error) {
	if c.srv.closed.Load() {
		// Shutdown: finish what is buffered, then see a timeout, which makes
		// go-smtp say 421 and hang up.
		c.mu.Lock()
		c.Conn.SetReadDeadline(time.Now())
		c.mu.Unlock()
	}
	if e := c.ended.Load(); e != nil {
		return 0, e
	}
	n, err := c.Conn.Read(b)
	if e := c.ended.Load(); err != nil && e != nil {
		return n, e // instead of the timeout end set
	}
	return n, err
}

// end makes the connection's next read, or the one it waits in, fail with
// reply: go-smtp answers a read error that is an *smtp.SMTPError with it,
// and hangs up. A message being received is cut off, unacknowledged.
func (c *conn) end(reply *smtp.SMTPError) {
	c.ended.Store(reply)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Conn.SetReadDeadline(time.Now())
}

// wake interrupts a read blocked waiting for the client (Shutdown).
func (c *conn) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Conn.SetReadDeadline(time.Now())
}

func (c *conn) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	c.slot.Close()
	c.srv.mu.Lock()
	delete(c.srv.open, c)
	c.srv.mu.Unlock()
	return c.Conn.Close()
}

func remoteIP(c net.Conn) net.IP {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

// errorLog routes go-smtp's own messages to slog: panics are errors; the rest
// (dropped connections, failed TLS handshakes, which TLSFailures reports) is
// internet noise.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.print(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.print(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (e errorLog) print(msg string) {
	if strings.HasPrefix(msg, "panic") {
		e.log.Error("smtp: "+msg, "component", "smtpd")
		return
	}
	e.log.Debug("smtp: "+msg, "component", "smtpd")
}
