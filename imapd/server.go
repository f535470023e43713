// Package imapd serves the mail store to everyday mail clients over IMAP
// (IMAP4rev1 and IMAP4rev2). It is a thin adapter: go-imap's imapserver speaks
// the protocol, mailstore keeps the mail, and a session holds no more than the
// UIDs its client knows, so that thousands of idle clients cost little memory.
package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
	"sealmail/throttle"
	"sealmail/tlslog"
)

// ErrServerClosed is returned by Serve and ServeTLS after Shutdown.
var ErrServerClosed = errors.New("imapd: server closed")

// Server is an IMAP server over one mail store.
type Server struct {
	Store     *mailstore.Store
	TLSConfig *tls.Config
	Logger    *slog.Logger
	// MaxMessageSize is the largest APPEND accepted (APPENDLIMIT); zero means 50 MiB.
	MaxMessageSize int64
	// IdleTimeout logs out a client silent that long. imapserver already allows
	// 35 minutes, so only shorter values take effect; zero keeps that.
	IdleTimeout time.Duration
	// ConnLimits caps simultaneous connections: per address before login, per
	// account after; zero fields take throttle.DefaultConnLimits.
	ConnLimits throttle.ConnLimits
	// Logins slows password guessing; share it with the SMTP server. Nil gets
	// a private one with throttle's defaults.
	Logins *throttle.Logins
	// TLSFailures is told of failed TLS handshakes (nil: they are not reported).
	TLSFailures *tlslog.Reporter
	// ConnMetrics, if set, counts connections and sessions (monitoring).
	ConnMetrics throttle.ConnMetrics
	// CommandDone, if set, is told of every command: its name (upper case,
	// "UID FETCH") and how long it took, the response included: monitoring.
	CommandDone func(name string, d time.Duration)

	once   sync.Once
	srv    *imapserver.Server
	conns  *throttle.Conns
	logins *throttle.Logins
	log    *slog.Logger

	mu       sync.Mutex
	closed   bool
	sessions sync.WaitGroup
}

const (
	defaultMaxMessageSize = 50 << 20 // config.Default's limits.max-message-size
)

// caps is what the server advertises. imapserver adds by itself SASL-IR,
// ENABLE, IDLE, UTF8=ACCEPT, STARTTLS, AUTH=PLAIN or LOGINDISABLED, and after
// login UNSELECT and APPENDLIMIT=n (from session.AppendLimit); every other
// extension listed here is carried out by session code in this package. Those
// that reveal nothing about an account (LITERAL+, ID, UNAUTHENTICATE, SORT,
// THREAD) are advertised before login too.
var caps = imap.CapSet{
	imap.CapIMAP4rev1:        {},
	imap.CapIMAP4rev2:        {},
	imap.CapNamespace:        {},
	imap.CapUIDPlus:          {},
	imap.CapESearch:          {},
	imap.CapSearchRes:        {},
	imap.CapListExtended:     {},
	imap.CapListStatus:       {},
	imap.CapMove:             {},
	imap.CapStatusSize:       {},
	imap.CapBinary:           {},
	imap.CapChildren:         {},
	imap.CapSpecialUse:       {},
	imap.CapCreateSpecialUse: {},
	imap.CapLiteralPlus:      {},
	imap.CapID:               {},
	imap.CapUnauthenticate:   {},
	imap.CapSort:             {},
	imap.CapSortDisplay:      {},
	"THREAD=REFERENCES":      {},
	"THREAD=ORDEREDSUBJECT":  {},
	imap.CapQuota:            {},
	"QUOTA=RES-STORAGE":      {},
	imap.CapCondStore:        {},
	imap.CapQResync:          {},
}

func (s *Server) init() {
	s.once.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.Default()
		}
		s.logins = s.Logins
		if s.logins == nil {
			s.logins = throttle.NewLogins()
		}
		s.conns = &throttle.Conns{Limits: s.ConnLimits, Protocol: "imap", Logger: s.log, Metrics: s.ConnMetrics}
		s.srv = imapserver.New(&imapserver.Options{
			NewSession:  s.newSession,
			Caps:        caps,
			Logger:      logger{s.log},
			TLSConfig:   s.TLSConfig,
			CommandDone: s.CommandDone,
			TLSHandshakeFailed: func(c net.Conn, err error) {
				s.TLSFailures.Failed("imap", c, err)
			},
		})
	})
}

// Serve accepts cleartext connections on l. Clients must STARTTLS before they
// may log in (LOGINDISABLED is advertised until then).
func (s *Server) Serve(l net.Listener) error {
	if s.TLSConfig == nil {
		return errors.New("imapd: Serve needs a TLSConfig for STARTTLS")
	}
	return s.serve(&listener{Listener: l, idle: s.IdleTimeout})
}

// ServeTLS accepts connections on l and speaks TLS from the first byte (port 993).
func (s *Server) ServeTLS(l net.Listener) error {
	if s.TLSConfig == nil {
		return errors.New("imapd: ServeTLS needs a TLSConfig")
	}
	return s.serve(tls.NewListener(&listener{Listener: l, idle: s.IdleTimeout}, s.TLSConfig))
}

func (s *Server) serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		l.Close()
		return ErrServerClosed
	}
	err := s.srv.Serve(l)
	s.mu.Lock()
	closed = s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	if err != nil {
		return fmt.Errorf("imapd: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections, closes every session and returns once
// they have all ended, or when ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// imapserver's Close closes listeners and connections; an error there is a
	// listener failing to close, which is of no consequence now.
	s.srv.Close()
	ended := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ip := remoteIP(c.NetConn())
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.sessions.Add(1)
	}
	s.mu.Unlock()
	if closed {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	slot, err := s.conns.Open(ip)
	if err != nil {
		s.sessions.Done()
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Code: imap.ResponseCodeLimit, Text: err.Error()}
	}
	return &session{srv: s, conn: c, ip: ip, slot: slot}, nil, nil
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// listener hands out connections whose read deadlines never reach past the
// idle timeout, which is how the timeout reaches inside imapserver: it sets a
// deadline before every read, and we shorten it.
type listener struct {
	net.Listener
	idle time.Duration
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	// imapserver sets no deadline until after the greeting, and for implicit
	// TLS writing the greeting first reads the client's hello.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if l.idle > 0 {
		c = &idleConn{Conn: c, idle: l.idle}
	}
	return &coalesceConn{Conn: c}, nil
}

type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	if limit := time.Now().Add(c.idle); t.IsZero() || t.After(limit) {
		t = limit
	}
	return c.Conn.SetReadDeadline(t)
}

// NetConn returns the wrapped connection (see coalesceConn.NetConn).
func (c *idleConn) NetConn() net.Conn { return c.Conn }

func (c *idleConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// logger passes imapserver's messages to slog: its panics as errors, the rest
// (clients that vanish or time out) as debug noise.
type logger struct{ l *slog.Logger }

func (l logger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(msg, "panic") {
		l.l.Error("imap: " + msg)
	} else {
		l.l.Debug("imap: " + msg)
	}
}
