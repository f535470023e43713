package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sealmail/mailauth"
	"sealmail/mailstore"
)

// TestRelayMemory queues four 50 MB messages from an authenticated sender and
// lets the relay, in a child process (TestRelayMemoryChild), sign and send
// them at once to Postfix's smtp-sink. The child's peak RSS must stay under
// maxRSS: content is streamed from the blob store to the DKIM signer and to
// DATA, and notices take only the header, so the workers cost buffers, not
// messages (75 MB measured under -race, mostly the race detector's and
// SQLite's; 1585 MB when each worker loaded its message and signed a copy).
// The sink must have taken each message whole, behind its signature.
func TestRelayMemory(t *testing.T) {
	const (
		messages = 4
		msgSize  = 50_000_000
		maxRSS   = 128 << 20
	)
	addr, dump := startSink(t)
	_, port, _ := net.SplitHostPort(addr)
	dir, dkimDir := t.TempDir(), t.TempDir()
	name, value, err := mailauth.GenerateKey(dkimDir, "example.test", "s1")
	if err != nil {
		t.Fatal(err)
	}

	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	// What the sink writes of each message, its lines without their CR:
	// their SHA-256 and length.
	want := map[[32]byte]int64{}
	block := make([]byte, 57*1000)
	rand.Read(block)
	for i := range messages {
		f, err := os.Create(filepath.Join(t.TempDir(), "msg"))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		var size, stripped int64
		w := bufio.NewWriter(f)
		write := func(s string) {
			w.WriteString(s)
			size += int64(len(s))
			bare := strings.ReplaceAll(s, "\r", "")
			io.WriteString(h, bare)
			stripped += int64(len(bare))
		}
		write(fmt.Sprintf("From: a@example.test\r\nTo: x@remote.test\r\nSubject: large %d\r\nMessage-ID: <large-%d@example.test>\r\n"+
			"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i))
		b64 := base64.StdEncoding.EncodeToString(block)
		var lines strings.Builder
		for k := 0; k < len(b64); k += 76 {
			lines.WriteString(b64[k:min(k+76, len(b64))] + "\r\n")
		}
		for k := 0; size < msgSize; k++ {
			write(fmt.Sprintf("%d-%d\r\n", i, k)) // no two messages alike
			write(lines.String())
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Accept(context.Background(), mailstore.Delivery{Content: mailstore.Content{R: f, Size: size},
			From: "a@example.test", Remote: []string{"x@remote.test"}}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		var sum [32]byte
		h.Sum(sum[:0])
		want[sum] = stripped
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestRelayMemoryChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "RELAY_MEMORY_DIR="+dir, "RELAY_MEMORY_PORT="+port, "RELAY_MEMORY_DKIM="+dkimDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, after, ok := strings.Cut(string(out), "VmHWM ")
	hwm, err := strconv.ParseInt(strings.Fields(after + " x")[0], 10, 64)
	if !ok || err != nil {
		t.Fatalf("child said no VmHWM:\n%s", out)
	}
	t.Logf("relay of %d × %d bytes: child VmHWM %d MB", messages, msgSize, hwm>>20)
	if hwm > maxRSS {
		t.Errorf("relay VmHWM %d MB, want under %d MB", hwm>>20, maxRSS>>20)
	}

	files, _ := filepath.Glob(filepath.Join(dump, "*"))
	if len(files) != messages {
		t.Fatalf("smtp-sink took %d messages, want %d\n%s", len(files), messages, out)
	}
	r := mxTo("remote.test")
	r.TXT = map[string][]string{name: {value}}
	checker := &mailauth.Checker{Resolver: r, Hostname: "sink.remote.test"}
	for i, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		// The sink's file: its own fields, the message, and the LF of the
		// final dot's line.
		body := fi.Size() - 1
		matched := false
		for sum, n := range want {
			if body < n {
				continue
			}
			h := sha256.New()
			io.Copy(h, io.NewSectionReader(f, body-n, n))
			head := make([]byte, body-n)
			f.ReadAt(head, 0)
			if [32]byte(h.Sum(nil)) == sum && bytes.Contains(head, []byte("\nDKIM-Signature: ")) {
				delete(want, sum)
				matched = true
				break
			}
		}
		if !matched {
			t.Errorf("%s (%d bytes) is no queued message behind its signature", path, fi.Size())
		}
		if i == 0 {
			// The signature computed as a stream verifies.
			if hdr, _, _ := checker.Check(context.Background(), net.IPv4(127, 0, 0, 1), "mail.example.test", "a@example.test", io.NewSectionReader(f, 0, fi.Size())); !strings.Contains(hdr, "dkim=pass") {
				t.Errorf("DKIM of %s: %s", path, hdr)
			}
		}
		f.Close()
	}
}

// TestRelayMemoryChild is TestRelayMemory's relay: it sends the queue until
// it is empty, then says its peak RSS.
func TestRelayMemoryChild(t *testing.T) {
	dir := os.Getenv("RELAY_MEMORY_DIR")
	if dir == "" {
		return // not a test of its own: TestRelayMemory runs it
	}
	s := openStoreAt(t, dir)
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test",
		Port: os.Getenv("RELAY_MEMORY_PORT"), DKIM: &mailauth.Signer{Dir: os.Getenv("RELAY_MEMORY_DKIM")}}
	runQueue(t, q)
	// The parent's test timeout bounds this wait.
	for queueLen(t, s) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			fmt.Printf("VmHWM %d\n", kb<<10)
		}
	}
}
