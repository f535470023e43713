package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"sealmail/mailstore"
)

// TestMXMemory is the attack of issue 15: 100 clients from 4 addresses send
// 50 MB messages at once to the MX port, without logging in. The server (a
// 'sealmail serve' child process) must stay under the 300 MB, store
// every message it acknowledged intact, and refuse the others with 4xx/5xx.
// Messages are spooled past 256 KiB, their total in flight is capped
// (limits.max-in-flight), delivery hashes and parses them where they lie
// (mimetree.ParseAt on the spool file) and copies them into the blob store,
// and the indexer parses them from there: no message is ever whole in
// memory (docs/benchmarks.md has the figures).
func TestMXMemory(t *testing.T) {
	const (
		clients  = 100
		msgSize  = 50_000_000
		maxRSS   = 300 << 20
		attackBy = 4 * time.Minute
	)
	data := setupData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--password-stdin", "--data", data)
	srv := startServe(t, data)
	pid := srv.cmd.Process.Pid
	addr := srv.addrs["smtp-addr"]

	var peak, peakAnon, peakFile int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, procStatus(t, pid, "VmRSS"))
			peakAnon = max(peakAnon, procStatus(t, pid, "RssAnon"))
			peakFile = max(peakFile, procStatus(t, pid, "RssFile"))
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// Every message is the same random block repeated, behind a header and a
	// line naming the message and the block, so that a mix-up shows.
	block := make([]byte, 57*12000)
	rand.Read(block)
	b64 := base64.StdEncoding.EncodeToString(block)
	var lines strings.Builder
	for i := 0; i < len(b64); i += 76 {
		lines.WriteString(b64[i:min(i+76, len(b64))] + "\r\n")
	}
	chunk := lines.String()

	type result struct {
		sum  [32]byte
		size int
		err  error
	}
	results := make([]result, clients)
	ctx, cancel := context.WithTimeout(context.Background(), attackBy)
	defer cancel()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%4))}
			nc, err := (&net.Dialer{LocalAddr: src}).DialContext(ctx, "tcp", addr)
			if err != nil {
				results[i].err = err
				return
			}
			nc.SetDeadline(time.Now().Add(attackBy))
			defer nc.Close()
			// By hand: go-smtp's client dot-stuffs byte by byte, which under
			// the race detector would take minutes; these lines need none.
			tc := textproto.NewConn(nc)
			size := ""
			if i%2 == 0 {
				size = fmt.Sprintf(" SIZE=%d", msgSize)
			}
			for _, step := range []struct {
				cmd  string
				code int
			}{{"", 220}, {"EHLO attacker.test", 250}, {"MAIL FROM:<x@other.example>" + size, 250}, {"RCPT TO:<a@agency.example>", 250}, {"DATA", 354}} {
				if step.cmd != "" {
					tc.PrintfLine("%s", step.cmd)
				}
				if code, msg, err := tc.ReadResponse(step.code); err != nil {
					results[i].err = &smtp.SMTPError{Code: code, Message: msg}
					if code == 0 {
						results[i].err = err
					}
					return
				}
			}
			h := sha256.New()
			w := bufio.NewWriterSize(nc, 64<<10)
			out := io.MultiWriter(w, h)
			n, _ := fmt.Fprintf(out, "From: x@other.example\r\nTo: a@agency.example\r\nSubject: message %d\r\n"+
				"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n", i)
			for k := 0; n < msgSize; k++ {
				m, _ := fmt.Fprintf(out, "%d-%d\r\n", i, k)
				n += m
				m, err = io.WriteString(out, chunk)
				n += m
				if err != nil {
					break
				}
			}
			results[i].size = n
			h.Sum(results[i].sum[:0])
			io.WriteString(w, ".\r\n")
			if err := w.Flush(); err != nil {
				results[i].err = err
				return
			}
			if code, msg, err := tc.ReadResponse(250); err != nil {
				results[i].err = &smtp.SMTPError{Code: code, Message: msg}
				if code == 0 {
					results[i].err = err
				}
				return
			}
			tc.PrintfLine("QUIT")
		})
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	hwm := procStatus(t, pid, "VmHWM")
	srv.stop(t)

	accepted := map[[32]byte]int{}
	refused := map[int]int{}
	for i, r := range results {
		var se *smtp.SMTPError
		switch {
		case r.err == nil:
			accepted[r.sum] = r.size
		case errors.As(r.err, &se) && se.Code >= 400:
			refused[se.Code]++
		default:
			t.Errorf("client %d: %v (want 250, 4xx or 5xx)", i, r.err)
		}
	}
	t.Logf("%d accepted, refused by code %v; server RSS peak %d MB sampled (anonymous %d MB, file %d MB), VmHWM %d MB",
		len(accepted), refused, peak>>20, peakAnon>>20, peakFile>>20, hwm>>20)
	if hwm > maxRSS {
		t.Errorf("server VmHWM %d MB, want under %d MB", hwm>>20, maxRSS>>20)
	}
	if len(accepted) == 0 {
		t.Fatal("nothing accepted")
	}

	s := openStore(t, data)
	acct, err := s.Account(context.Background(), "a@agency.example")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := s.Mailbox(context.Background(), acct.ID, mailstore.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	err = s.Fetch(context.Background(), inbox.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
		stored++
		// The stored message is the sent one behind the server's trace fields.
		at := bytes.Index(it.Content, []byte("From: x@other.example\r\n"))
		if at < 0 {
			return fmt.Errorf("UID %d: not a sent message", it.UID)
		}
		sum := sha256.Sum256(it.Content[at:])
		if _, ok := accepted[sum]; !ok {
			return fmt.Errorf("UID %d: %d bytes match no accepted message", it.UID, len(it.Content)-at)
		}
		delete(accepted, sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(accepted) != 0 {
		t.Errorf("%d accepted messages not stored intact (%d stored)", len(accepted), stored)
	}
}

// procStatus returns a memory figure of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("reading the server's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}
