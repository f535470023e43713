package smtp

// sealmail: fuzz tests for the command parser (through a whole server
// connection, so every command's argument parsing is reached) and the DATA
// reader. Their seed corpora in testdata/fuzz run with every 'go test'; run
// one for longer with e.g. 'go test -run XXX -fuzz FuzzCommands -fuzztime 3m'.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

type fuzzBackend struct{}

func (fuzzBackend) NewSession(*Conn) (Session, error) { return fuzzSession{}, nil }

type fuzzSession struct{}

func (fuzzSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (fuzzSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, _ string) error { return nil }), nil
}
func (fuzzSession) Mail(string, *MailOptions) error { return nil }
func (fuzzSession) Rcpt(string, *RcptOptions) error { return nil }
func (fuzzSession) Data(r io.Reader) error {
	_, err := io.Copy(ioutil.Discard, r)
	return err
}
func (fuzzSession) Reset()        {}
func (fuzzSession) Logout() error { return nil }

// panicLog fails the fuzz case when the server recovers from a panic.
type panicLog struct {
	mu     sync.Mutex
	panics []string
}

func (l *panicLog) Printf(format string, v ...interface{}) {
	if strings.HasPrefix(format, "panic") {
		l.mu.Lock()
		l.panics = append(l.panics, fmt.Sprintf(format, v...))
		l.mu.Unlock()
	}
}
func (l *panicLog) Println(v ...interface{}) {}

// FuzzCommands sends the input as a client's stream after EHLO and checks that
// the server neither panics nor stops answering.
func FuzzCommands(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d.test\r\nDATA\r\nx\r\n.\r\n",
		"MAIL FROM:<> RET=HDRS ENVID=a+2Bb AUTH=<>\r\nRCPT TO:<\"q u\"@d.test>\r\nBDAT 3 LAST\r\nabc",
		"MAIL FROM:<@route,@r2:a@b.test> BY=120;R MT-PRIORITY=3\r\nRSET\r\nNOOP\r\nVRFY x\r\n",
		"AUTH PLAIN AGEAYg==\r\nAUTH PLAIN\r\n*\r\nHELO x\r\nMAIL FROM:a@b\r\n",
		"MAIL FROM:<a@[127.0.0.1]> SIZE=99999999999999999999\r\nRCPT TO:<postmaster>\r\nBDAT 1\r\nxBDAT 0 LAST\r\n",
		"\r\n \r\nmail from:<A@B.TEST> =\r\nRCPT TO:<a@b.test> RRVS=2020-01-01T00:00:00Z;R\r\nDATA x\r\nSTARTTLS\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		log := &panicLog{}
		s := NewServer(fuzzBackend{})
		s.Domain = "fuzz.test"
		s.MaxMessageBytes = 1 << 16
		s.MaxLineLength = 4096
		s.AllowInsecureAuth = true
		s.EnableSMTPUTF8, s.EnableREQUIRETLS, s.EnableBINARYMIME, s.EnableDSN = true, true, true, true
		s.EnableRRVS, s.EnableDELIVERBY, s.EnableMTPRIORITY = true, true, true
		s.ErrorLog = log
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			s.handleConn(newConn(server, s))
			close(done)
		}()
		go io.Copy(ioutil.Discard, client)
		client.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(client, "EHLO fuzz.test\r\n"+input+"\r\nRSET\r\nQUIT\r\n")
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection handler did not return")
		}
		if len(log.panics) > 0 {
			t.Fatalf("server panicked: %v", log.panics)
		}
	})
}

// FuzzDataReader reads arbitrary bytes as DATA (never more out than in, never
// a panic) and checks the round trip: any text, dot-stuffed and ended with
// CRLF.CRLF, reads back as itself, however the stream is split.
func FuzzDataReader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n.\r\n",
		".\r\n", "..\r\n.\r\n", ".\rx\r\n.\r\n", "a\r\r\n.\r\n", "a\r\r\n..b\r\n.\r\n",
		"a\n.\n", "\r\n.\r", "line\r\n.. x\r\n.\r\nafter",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		r := &dataReader{r: bufio.NewReaderSize(bytes.NewReader(input), 16)}
		out, _ := ioutil.ReadAll(r)
		if len(out) > len(input) {
			t.Fatalf("read %d bytes out of %d", len(out), len(input))
		}

		// Any text as CRLF lines.
		lines := strings.Split(strings.NewReplacer("\r", "", "\n", "\x00").Replace(string(input)), "\x00")
		msg := strings.Join(lines, "\r\n") + "\r\n"
		var stuffed strings.Builder
		for _, l := range lines {
			if strings.HasPrefix(l, ".") {
				stuffed.WriteByte('.')
			}
			stuffed.WriteString(l + "\r\n")
		}
		stuffed.WriteString(".\r\nNEXT COMMAND\r\n")
		br := bufio.NewReaderSize(&oneByte{strings.NewReader(stuffed.String())}, 16)
		got, err := ioutil.ReadAll(&dataReader{r: br})
		if err != nil || string(got) != msg {
			t.Fatalf("round trip of %q: got %q, %v", msg, got, err)
		}
		if rest, _ := ioutil.ReadAll(br); string(rest) != "NEXT COMMAND\r\n" {
			t.Fatalf("after the message: %q", rest)
		}
	})
}

// oneByte reads a byte at a time, to split the stream everywhere.
type oneByte struct{ r io.Reader }

func (o *oneByte) Read(b []byte) (int, error) {
	if len(b) > 1 {
		b = b[:1]
	}
	return o.r.Read(b)
}
