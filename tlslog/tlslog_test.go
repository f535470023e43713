package tlslog

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"sealmail/certs"
)

// lines is a log that the test reads as JSON objects.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) all(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func newReporter(log io.Writer) *Reporter {
	return &Reporter{Logger: slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// TestListener drives real handshakes through Listener: a good client gets
// through; a client that does not trust the certificate, a plain-text
// client and a TLS 1.0 client are each reported at info with their reason;
// a client that hangs up only at debug.
func TestListener(t *testing.T) {
	ca, err := certs.NewCA("mail.test")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue([]string{"mail.test", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var log lines
	r := newReporter(&log)
	r.Interval = time.Nanosecond // every client here is 127.0.0.1: no rate limit
	reasons := make(chan string, 10)
	r.Count = func(protocol, reason string) {
		if protocol != "https" {
			t.Errorf("protocol %q", protocol)
		}
		reasons <- reason
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := r.Listener(inner, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, "https", 10*time.Second)
	defer l.Close()
	addr := l.Addr().String()

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	go func() {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "mail.test"})
		if err != nil {
			t.Errorf("trusting client: %v", err)
			return
		}
		c.Write([]byte("hello"))
		c.Close()
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*tls.Conn)
	if !tc.ConnectionState().HandshakeComplete {
		t.Error("Accept returned a connection before its handshake")
	}
	if b, _ := io.ReadAll(tc); string(b) != "hello" {
		t.Errorf("read %q", b)
	}
	tc.Close()

	for _, tc := range []struct {
		reason string
		client func() error
	}{
		{"untrusted-certificate", func() error {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "mail.test"})
			if err == nil {
				c.Close()
			}
			return err
		}},
		{"not-tls", func() error {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			io.ReadAll(c)
			return errors.New("refused")
		}},
		{"old-tls-version", func() error {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "mail.test", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			if err == nil {
				c.Close()
			}
			return err
		}},
		{"hangup", func() error {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			c.Close()
			return errors.New("hung up")
		}},
	} {
		if err := tc.client(); err == nil {
			t.Errorf("%s: the client got through", tc.reason)
		}
		if got := <-reasons; got != tc.reason {
			t.Errorf("reason %q, want %q", got, tc.reason)
		}
	}
	var info []string
	for _, m := range log.all(t) {
		if m["level"] == "INFO" {
			if m["msg"] != "TLS handshake rejected" || m["client"] != "127.0.0.1" || m["listener"] != addr || m["hint"] == "" {
				t.Errorf("log line: %v", m)
			}
			info = append(info, m["reason"].(string))
		}
	}
	if strings.Join(info, " ") != "untrusted-certificate not-tls old-tls-version" {
		t.Errorf("info lines for %v", info)
	}
}

type fakeConn struct {
	net.Conn
	remote string
}

func (c fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP(c.remote), Port: 4000} }
func (c fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 993} }

// TestRateLimit: one line per protocol and client per interval, at most
// Burst in all; the next line counts what was left out; Count sees all.
func TestRateLimit(t *testing.T) {
	var log lines
	r := newReporter(&log)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return now }
	r.Burst = 3
	counted := 0
	r.Count = func(string, string) { counted++ }
	bad := &net.OpError{Op: "remote error", Err: errors.New("tls: unknown certificate authority")}
	r.Failed("imap", fakeConn{remote: "198.51.100.1"}, bad)
	r.Failed("imap", fakeConn{remote: "198.51.100.1"}, bad) // same client: left out
	r.Failed("smtp", fakeConn{remote: "198.51.100.1"}, bad) // another protocol: logged
	r.Failed("imap", fakeConn{remote: "198.51.100.2"}, bad)
	r.Failed("imap", fakeConn{remote: "198.51.100.3"}, bad) // past the burst
	now = now.Add(DefaultInterval)
	r.Failed("imap", fakeConn{remote: "198.51.100.1"}, bad)
	var got []string
	for _, m := range log.all(t) {
		s := m["protocol"].(string) + " " + m["client"].(string)
		if n, ok := m["suppressed"]; ok {
			s += " suppressed " + strings.TrimSuffix(strings.TrimSuffix(jsonNum(n), ".0"), ".")
		}
		if m["reason"] != "untrusted-certificate" {
			t.Errorf("reason %v", m["reason"])
		}
		got = append(got, s)
	}
	want := "imap 198.51.100.1,smtp 198.51.100.1 suppressed 1,imap 198.51.100.2,imap 198.51.100.1 suppressed 1"
	if strings.Join(got, ",") != want {
		t.Errorf("logged %q, want %q", strings.Join(got, ","), want)
	}
	if counted != 6 {
		t.Errorf("Count saw %d failures, want 6", counted)
	}
	var nilReporter *Reporter
	nilReporter.Failed("imap", fakeConn{remote: "198.51.100.1"}, bad) // no panic, nothing
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
