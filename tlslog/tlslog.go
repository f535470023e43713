// Package tlslog reports TLS handshakes the server rejected or a client gave
// up on, at info level, so that an administrator sees why a client cannot
// connect (most often: it does not trust the certificate) without turning on
// debug logging. The internet is full of scanners that fail handshakes, so
// reports are rate-limited: one line per listener and client address per
// Interval, and at most Burst lines per Interval in all; what is left out is
// counted in the next line.
package tlslog

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of Reporter's limits.
const (
	DefaultInterval = 10 * time.Minute
	DefaultBurst    = 20
	// maxClients bounds the memory of client addresses; past it the memory starts again.
	maxClients = 10000
)

// Reporter logs failed handshakes. The zero value needs a Logger; a nil
// *Reporter reports nothing.
type Reporter struct {
	Logger   *slog.Logger
	Interval time.Duration // 0: DefaultInterval
	Burst    int           // 0: DefaultBurst
	// Count, when set, is called for every failure, logged or not (metrics).
	Count func(protocol, reason string)
	Now   func() time.Time // nil: time.Now

	mu         sync.Mutex
	last       map[client]time.Time // when a line about the client was last logged
	window     time.Time            // start of the current Burst window
	lines      int                  // logged in the window
	suppressed int                  // left out since the last line
}

// Failed reports that the TLS handshake of c, a connection of protocol
// ("imap", "smtp", "https"), failed with err. The log line names the
// listener's address, which tells implicit TLS from STARTTLS.
func (r *Reporter) Failed(protocol string, c net.Conn, err error) {
	if r == nil || err == nil {
		return
	}
	remote, local := c.RemoteAddr(), c.LocalAddr().String()
	reason, hint := Classify(err)
	if r.Count != nil {
		// Counted once the line is written: a test waiting on Count then sees it.
		defer r.Count(protocol, reason)
	}
	ip := addrOf(remote)
	if reason == "hangup" {
		// A client that closes or times out without a word is a scanner, or
		// gave up for a reason it does not tell: not worth an info line.
		r.Logger.Debug("TLS handshake: the client hung up", "protocol", protocol, "listener", local, "client", ip, "err", err)
		return
	}
	suppressed, ok := r.allow(client{protocol, local, ip})
	if !ok {
		return
	}
	args := []any{"protocol", protocol, "listener", local, "client", ip, "reason", reason, "err", err, "hint", hint}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	r.Logger.Info("TLS handshake rejected", args...)
}

type client struct {
	protocol, listener string
	ip                 netip.Addr
}

// allow decides whether a line about c is logged now, and returns how many
// were left out before it.
func (r *Reporter) allow(c client) (int, bool) {
	interval, burst := r.Interval, r.Burst
	if interval == 0 {
		interval = DefaultInterval
	}
	if burst == 0 {
		burst = DefaultBurst
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || len(r.last) >= maxClients {
		r.last = map[client]time.Time{}
	}
	if now.Sub(r.window) >= interval {
		r.window, r.lines = now, 0
	}
	if t, ok := r.last[c]; (ok && now.Sub(t) < interval) || r.lines >= burst {
		r.suppressed++
		return 0, false
	}
	r.last[c] = now
	r.lines++
	n := r.suppressed
	r.suppressed = 0
	return n, true
}

// Classify names why a handshake failed (a short reason, as metrics label)
// and what an administrator can do about it.
func Classify(err error) (reason, hint string) {
	msg := err.Error()
	var rec tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "remote error":
		if strings.Contains(msg, "certificate") || strings.Contains(msg, "unknown ca") {
			return "untrusted-certificate", "the client does not trust the server's certificate: import the local CA (tls/ca.pem, offered at https://HOST/ca.pem) on the device, or install a certificate from a public CA"
		}
		return "client-alert", "the client refused the handshake; check its TLS settings"
	case errors.As(err, &rec):
		return "not-tls", "the client did not speak TLS: a plain-text client on a TLS port (use the STARTTLS port, or turn on SSL/TLS in the client)"
	case strings.Contains(msg, "unsupported versions") || strings.Contains(msg, "protocol version"):
		return "old-tls-version", "the client offers only TLS versions older than 1.2; update it"
	case strings.Contains(msg, "cipher suite") || strings.Contains(msg, "no supported curves") || strings.Contains(msg, "signature"):
		return "no-common-cipher", "the client and the server share no cipher suite or key type; update the client"
	case strings.Contains(msg, "no application protocol"):
		return "alpn", "the client insists on an application protocol (ALPN) the server does not offer"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") || isTimeout(err):
		return "hangup", ""
	}
	return "other", "see err"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func addrOf(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	ip, _ := netip.ParseAddr(a.String())
	return ip
}

// Listener returns a listener whose Accept returns the connections of inner
// as *tls.Conn with their handshake done; a handshake that fails is reported
// as protocol's and the connection closed. Handshakes run concurrently, each
// bounded by timeout, so a slow client holds up no other. For servers that
// cannot report failed handshakes themselves (net/http logs them as text).
func (r *Reporter) Listener(inner net.Listener, config *tls.Config, protocol string, timeout time.Duration) net.Listener {
	l := &listener{inner: inner, conns: make(chan *tls.Conn), done: make(chan struct{}), errc: make(chan error, 1)}
	go l.accept(r, config, protocol, timeout)
	return l
}

type listener struct {
	inner net.Listener
	conns chan *tls.Conn
	done  chan struct{}
	errc  chan error
	once  sync.Once
}

func (l *listener) accept(r *Reporter, config *tls.Config, protocol string, timeout time.Duration) {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			l.errc <- err
			return
		}
		go func() {
			tc := tls.Server(c, config)
			c.SetDeadline(time.Now().Add(timeout))
			err := tc.Handshake()
			c.SetDeadline(time.Time{})
			if err != nil {
				r.Failed(protocol, c, err)
				c.Close()
				return
			}
			select {
			case l.conns <- tc:
			case <-l.done:
				c.Close()
			}
		}()
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept fails the same
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.inner.Addr() }
