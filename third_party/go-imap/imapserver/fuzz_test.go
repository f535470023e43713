package imapserver_test

// sealmail: a fuzz test for the command parser, through a whole server
// connection (imapmemserver behind it), logged in with a mailbox selected,
// so every command's argument parsing is reached. Its seed corpus in
// testdata/fuzz runs with every 'go test'; search for more with e.g.
// 'go test -run XXX -fuzz FuzzCommands -fuzztime 5m -parallel 1'.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// panicLog records the server's reports of recovered panics.
type panicLog struct {
	mu     sync.Mutex
	panics []string
}

func (l *panicLog) Printf(format string, args ...interface{}) {
	if strings.Contains(format, "panic") {
		l.mu.Lock()
		l.panics = append(l.panics, fmt.Sprintf(format, args...))
		l.mu.Unlock()
	}
}

// pipeListener accepts one connection, then waits to be closed.
type pipeListener struct {
	conn   chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conn:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// FuzzCommands sends the input as a client's commands after LOGIN and
// SELECT, and checks that the server neither panics nor fails to end the
// connection when the client goes away.
func FuzzCommands(f *testing.F) {
	for _, s := range []string{
		"a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)] BODYSTRUCTURE ENVELOPE BINARY.PEEK[1]<0.10> RFC822.SIZE)\r\n",
		"a UID SEARCH CHARSET UTF-8 OR (FROM \"x\" NOT SEEN) (TEXT {3+}\r\nabc SINCE 1-Jan-2020) MODSEQ 5\r\n",
		"a STORE 1,2:* +FLAGS.SILENT (\\Seen $Label1) \r\na UID STORE 1 (UNCHANGEDSINCE 3) FLAGS ()\r\n",
		"a LIST (SUBSCRIBED REMOTE) \"\" (\"%*%\" \"INBOX/*\") RETURN (CHILDREN STATUS (MESSAGES UIDNEXT SIZE))\r\n",
		"a APPEND INBOX (\\Draft) \"05-Dec-2026 10:00:00 +0700\" {12+}\r\nSubject: x\r\n\r\n",
		"a CREATE &AMk-t&AOk-\r\na RENAME \"&AMk-t&AOk-\" Other\r\na STATUS Other (MESSAGES UNSEEN HIGHESTMODSEQ)\r\na DELETE Other\r\n",
		"a SELECT INBOX (QRESYNC (1 2 1:3 (1:2 1:2)))\r\na ENABLE QRESYNC CONDSTORE UTF8=ACCEPT\r\n",
		"a UID SORT (REVERSE ARRIVAL SUBJECT) UTF-8 ALL\r\na THREAD REFERENCES UTF-8 ALL\r\na GETQUOTAROOT INBOX\r\na ID (\"name\" \"x\")\r\n",
		"a IDLE\r\nDONE\r\na UID EXPUNGE 1:2\r\na COPY 1 INBOX\r\na MOVE 1 INBOX\r\na NAMESPACE\r\na UNSELECT\r\n",
		"a SEARCH NOT NOT NOT OR OR ALL ALL (((SMALLER 5))) HEADER X-A \"\" UID 1:*,4\r\n",
		"a AUTHENTICATE PLAIN\r\n*\r\na LOGIN {1}\r\nx {1}\r\ny\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		log := &panicLog{}
		mem := imapmemserver.New()
		user := imapmemserver.NewUser("u", "p")
		if err := user.Create("INBOX", nil); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{
			"From: a@b.test\r\nSubject: one\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
			"Subject: two\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n\r\npart\r\n--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--X--\r\n",
		} {
			if _, err := user.Append("INBOX", literal{bytes.NewReader([]byte(m))}, &imap.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		mem.AddUser(user)
		srv := imapserver.New(&imapserver.Options{
			NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
				return mem.NewSession(), nil, nil
			},
			// imapmemserver has no CONDSTORE: its arguments are parsed only
			// with it (sealmail's imapd has it; its tests cover them).
			Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapLiteralPlus: {}, imap.CapUTF8Accept: {},
				imap.CapMove: {}, imap.CapUIDPlus: {}, imap.CapIdle: {}},
			Logger:       log,
			InsecureAuth: true,
		})
		server, client := net.Pipe()
		ln := &pipeListener{conn: make(chan net.Conn, 1), closed: make(chan struct{})}
		ln.conn <- server
		served := make(chan struct{})
		go func() {
			srv.Serve(ln)
			close(served)
		}()
		read := make(chan struct{})
		go func() {
			io.Copy(io.Discard, client)
			close(read)
		}()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(client, "a LOGIN u p\r\na SELECT INBOX\r\n"+input+"\r\nz NOOP\r\nz LOGOUT\r\n")
		client.Close()
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end")
		}
		ln.Close()
		srv.Close()
		<-served
		log.mu.Lock()
		defer log.mu.Unlock()
		if len(log.panics) > 0 {
			t.Fatalf("server panicked: %v", log.panics)
		}
	})
}
