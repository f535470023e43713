package smtp_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sealmail: a server's net.Conn ends a connection with a reply of its own by
// failing its reads with an *SMTPError (sealmail: the account's password
// changed). The reply is written, between commands and in the middle of a
// message, once, and the connection closed; the message is not taken.

// endConn is a connection whose reads fail with err once end is called.
type endConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (c *endConn) ended() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *endConn) Read(b []byte) (int, error) {
	if err := c.ended(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if e := c.ended(); err != nil && e != nil {
		err = e
	}
	return n, err
}

func (c *endConn) end(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	c.Conn.SetReadDeadline(time.Now())
}

type endListener struct {
	net.Listener
	conns chan *endConn
}

func (l *endListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ec := &endConn{Conn: c}
	l.conns <- ec
	return ec, nil
}

var errEnd = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Password changed"}

func TestServerEndsConnection(t *testing.T) {
	for _, inData := range []bool{false, true} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		el := &endListener{Listener: l, conns: make(chan *endConn, 1)}
		be := new(backend)
		s := smtp.NewServer(be)
		s.Domain = "localhost"
		s.AllowInsecureAuth = true
		s.ReadTimeout = time.Minute
		go s.Serve(el)
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(c)
		server := <-el.conns
		expect := func(prefix string) {
			t.Helper()
			for sc.Scan() {
				if line := sc.Text(); !strings.HasPrefix(line, "250-") {
					if !strings.HasPrefix(line, prefix) {
						t.Fatalf("got %q, want %s", line, prefix)
					}
					return
				}
			}
			t.Fatalf("connection closed, want %s", prefix)
		}
		expect("220 ")
		io.WriteString(c, "EHLO localhost\r\nAUTH PLAIN AHVzZXJuYW1lAHBhc3N3b3Jk\r\n")
		expect("250 ")
		expect("235 ")
		if inData {
			io.WriteString(c, "MAIL FROM:<root@nsa.gov>\r\nRCPT TO:<root@gchq.gov.uk>\r\nDATA\r\n")
			expect("250 ")
			expect("250 ")
			expect("354 ")
			io.WriteString(c, "Subject: half\r\n\r\nthe first line\r\n")
		}
		server.end(errEnd)
		expect("421 4.7.0 Password changed")
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if sc.Scan() {
			t.Errorf("in DATA %v: after the reply, %q", inData, sc.Text())
		}
		// Closed: at the end of what was sent, or reset when the client's
		// message was still unread.
		if err := sc.Err(); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("in DATA %v: the connection was not closed: %v", inData, sc.Err())
		}
		if len(be.messages) != 0 {
			t.Errorf("in DATA %v: the message was taken", inData)
		}
		c.Close()
		s.Close()
	}
}
