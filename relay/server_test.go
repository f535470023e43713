package relay

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"sealmail/config"
	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
	"sealmail/resolve"
)

// received is one message a test server accepted.
type received struct {
	from  string
	rcpts []string
	data  []byte
	tls   bool
}

// testServer is a go-smtp server on 127.0.0.1 that records what it is sent.
type testServer struct {
	addr string
	// rcpt decides each RCPT TO; nil accepts all.
	rcpt func(to string) error
	mu   sync.Mutex
	got  []received
	// sessions counts connections that reached MAIL FROM.
	sessions int
	arrived  chan struct{}
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.got...)
}

func (ts *testServer) setRcpt(f func(string) error) {
	ts.mu.Lock()
	ts.rcpt = f
	ts.mu.Unlock()
}

type tsSession struct {
	ts   *testServer
	c    *smtp.Conn
	from string
	to   []string
}

func (s *tsSession) AuthMechanisms() []string { return nil }
func (s *tsSession) Mail(from string, _ *smtp.MailOptions) error {
	s.ts.mu.Lock()
	s.ts.sessions++
	s.ts.mu.Unlock()
	s.from = from
	return nil
}
func (s *tsSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ts.mu.Lock()
	f := s.ts.rcpt
	s.ts.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}
func (s *tsSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.ts.mu.Lock()
	s.ts.got = append(s.ts.got, received{s.from, s.to, b, isTLS})
	s.ts.mu.Unlock()
	select {
	case s.ts.arrived <- struct{}{}:
	default:
	}
	return nil
}
func (s *tsSession) Reset()        { s.from, s.to = "", nil }
func (s *tsSession) Logout() error { return nil }

// startServer starts a test SMTP server offering STARTTLS with a self-signed
// certificate for names (none: no STARTTLS). It returns the server and the
// certificate's PEM.
func startServer(t testing.TB, names ...string) (*testServer, string) {
	t.Helper()
	ts := &testServer{arrived: make(chan struct{}, 1000)}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &tsSession{ts: ts, c: c}, nil
	}))
	s.Domain = "mx.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	var pemCert string
	if len(names) > 0 {
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := config.WriteSelfSigned(cert, key, names); err != nil {
			t.Fatal(err)
		}
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}}
		b, _ := os.ReadFile(cert)
		pemCert = string(b)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return ts, pemCert
}

func (ts *testServer) port() string {
	_, p, _ := net.SplitHostPort(ts.addr)
	return p
}

// openStore opens a test store with a local domain example.test and its
// accounts.
func openStore(t testing.TB, addrs ...string) (*mailstore.Store, []mailstore.Account) {
	t.Helper()
	s, err := mailstore.Open(t.TempDir(), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, storetest.Setup(t, s, addrs...)
}

// runQueue starts q's workers for the rest of the test.
func runQueue(t testing.TB, q *Queue) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		q.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// mxTo returns a resolver that sends mail for each domain to 127.0.0.1.
func mxTo(domains ...string) *resolve.Static {
	r := &resolve.Static{MX: map[string][]*net.MX{}, IP: map[string][]net.IP{}}
	for _, d := range domains {
		r.MX[d] = []*net.MX{{Host: "mx." + d + ".", Pref: 10}}
		r.IP["mx."+d] = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	return r
}

var errTempRcpt = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
var errNoUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
