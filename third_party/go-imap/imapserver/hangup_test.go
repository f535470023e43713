package imapserver_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// slowSession's LIST runs until its command's context ends, standing for any
// command that is slow for whatever reason.
type slowSession struct {
	*imapmemserver.UserSession
	conn    *imapserver.Conn
	stopped chan error
}

func (s *slowSession) Login(username, password string) error { return nil }

func (s *slowSession) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	ctx := s.conn.Context()
	select {
	case <-ctx.Done():
		s.stopped <- ctx.Err()
		return ctx.Err()
	case <-time.After(30 * time.Second):
		s.stopped <- nil
		return nil
	}
}

func slowServer(t *testing.T) (addr string, srv *imapserver.Server, stopped chan error) {
	stopped = make(chan error, 4)
	user := imapmemserver.NewUser("u", "p")
	srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &slowSession{UserSession: imapmemserver.NewUserSession(user), conn: c, stopped: stopped}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), srv, stopped
}

func startList(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a LOGIN u p\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("login: %q", l)
	}
	fmt.Fprintf(c, "b LIST \"\" *\r\n")
	return c
}

// sealmail: a command whose client hangs up stops (its context is cancelled).
func TestCommandContextHangup(t *testing.T) {
	addr, _, stopped := slowServer(t)
	c := startList(t, addr)
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case err := <-stopped:
		if err == nil {
			t.Fatal("LIST ran to its end although the client had left")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LIST still running 10 s after the client left")
	}
}

// sealmail: Server.Close does not wait for a slow command.
func TestCommandContextClose(t *testing.T) {
	addr, srv, stopped := slowServer(t)
	c := startList(t, addr)
	defer c.Close()
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case err := <-stopped:
		if err == nil {
			t.Fatal("LIST ran to its end although the server closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LIST still running 10 s after Close")
	}
	<-done
}
