package relay

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sealmail/internal/testtool"
	"sealmail/internal/testwait"
	"sealmail/mailauth"
	"sealmail/mailstore/storetest"
)

// TestSmtpSink delivers to Postfix's smtp-sink, a foreign SMTP server, and
// checks it took the signed message whole.
func TestSmtpSink(t *testing.T) {
	addr, dump := startSink(t)
	ctx := context.Background()
	s, _ := openStore(t, "a@example.test")
	dkimDir := t.TempDir()
	name, value, err := mailauth.GenerateKey(dkimDir, "example.test", "s1")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	r := mxTo("remote.test")
	q := &Queue{Store: s, Resolver: r, Hostname: "mail.example.test", Port: port, DKIM: &mailauth.Signer{Dir: dkimDir}}
	runQueue(t, q)
	msg := storetest.Msg("Nguyễn Văn A <a@example.test>", "x@remote.test", "Thử nghiệm gửi thư", "Xin chào, đây là thư thử.")
	if err := q.Enqueue(ctx, "a@example.test", []string{"x@remote.test", "y@remote.test"}, msg); err != nil {
		t.Fatal(err)
	}
	var files []string
	testwait.For(t, "smtp-sink to store the message", func() bool {
		files, _ = filepath.Glob(filepath.Join(dump, "*"))
		return len(files) == 1 && queueLen(t, s) == 0
	})
	// smtp-sink closes the file before it answers the final dot, and the
	// queue is empty only after that answer: the file is whole.
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"X-Mail-Args: <a@example.test>", "X-Rcpt-Args: <x@remote.test>", "X-Rcpt-Args: <y@remote.test>", "DKIM-Signature:", "Xin chào, đây là thư thử."} {
		if !strings.Contains(got, want) {
			t.Errorf("smtp-sink got no %q:\n%s", want, got)
		}
	}
	// What the foreign server received still verifies.
	r.TXT = map[string][]string{name: {value}}
	c := &mailauth.Checker{Resolver: r, Hostname: "sink.remote.test"}
	if hdr, _, _ := c.Check(ctx, net.IPv4(127, 0, 0, 1), "mail.example.test", "a@example.test", bytes.NewReader(b)); !strings.Contains(hdr, "dkim=pass") {
		t.Errorf("DKIM of the received message: %s", hdr)
	}
}

// startSink starts Postfix's smtp-sink on a free 127.0.0.1 port, writing each
// message it takes to a file of its own in dump.
func startSink(t *testing.T) (addr, dump string) {
	bin := testtool.Path(t, "smtp-sink", "postfix")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	// smtp-sink writes as nobody, who cannot enter t.TempDir's parent.
	dump, err = os.MkdirTemp("", "sink")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dump) })
	os.Chmod(dump, 0o777)
	args := []string{"-d", filepath.Join(dump, "%M."), "-h", "sink.remote.test"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	sink := exec.Command(bin, append(args, addr, "10")...)
	var stderr bytes.Buffer
	sink.Stderr = &stderr
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sink.Process.Kill()
		sink.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("smtp-sink: %s", stderr.String())
		}
	})
	testwait.For(t, "smtp-sink to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, dump
}
