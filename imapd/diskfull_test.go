package imapd

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/internal/testlog"
	"sealmail/internal/testtool"
	"sealmail/mailstore"
)

// randomMail is a message of about size bytes that does not compress, most
// of it an attachment (which is not indexed).
func randomMail(n, size int) []byte {
	b := make([]byte, size*3/4)
	rand.Read(b)
	body := base64.StdEncoding.EncodeToString(b)
	var m bytes.Buffer
	fmt.Fprintf(&m, "From: a@example.test\r\nTo: nam@example.test\r\nSubject: thư %d\r\nMessage-ID: <%d@example.test>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nTệp đính kèm.\r\n"+
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n", n, n)
	for len(body) > 76 {
		m.WriteString(body[:76] + "\r\n")
		body = body[76:]
	}
	m.WriteString(body + "\r\n--b--\r\n")
	return m.Bytes()
}

func appendMsg(c *imapclient.Client, msg []byte) (imap.UID, error) {
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	cmd.Write(msg)
	cmd.Close()
	d, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return d.UID, nil
}

// Issue 15, defects 7 and 8: with the disk full, clients get NO [UNAVAILABLE]
// (never SERVERBUG), every acknowledged message stays readable, the log says
// why once, the WAL's space is given back, and service is whole again soon
// after space returns.
func TestDiskFull(t *testing.T) {
	dir := testtool.Tmpfs(t, 32<<20)
	var logs testlog.Capture
	old := slog.Default()
	slog.SetDefault(logs.Logger(slog.LevelInfo))
	t.Cleanup(func() { slog.SetDefault(old) })
	e := newEnvAt(t, dir)

	free := testtool.Free(t, dir)
	// What the test frees later stands apart from the filler that stays.
	testtool.Fill(t, filepath.Join(dir, "filler"), free-12<<20)
	testtool.Fill(t, filepath.Join(dir, "later"), 6<<20)

	c := e.dial(t, "nam", nil)
	sent := map[imap.UID][]byte{}
	refused := 0
	for n := 0; refused < 5 && n < 200; n++ {
		msg := randomMail(n, 256<<10)
		uid, err := appendMsg(c, msg)
		switch {
		case err == nil:
			if refused > 0 {
				t.Logf("APPEND %d accepted after a refusal", n)
			}
			sent[uid] = msg
		case isCode(err, imap.ResponseCodeUnavailable) || isCode(err, imap.ResponseCodeOverQuota):
			refused++
		default:
			t.Fatalf("APPEND %d with the disk full: %v", n, err)
		}
	}
	if refused == 0 {
		t.Fatal("the disk never filled")
	}
	t.Logf("%d messages accepted before the disk was full", len(sent))

	// Reading still works; a FETCH that would set \Seen gives the data with
	// the flags unchanged (or NO [UNAVAILABLE]).
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil && !isCode(err, imap.ResponseCodeUnavailable) {
		t.Fatalf("FETCH BODY[] with the disk full: %v", err)
	}
	if err == nil && !bytes.Equal(msgs[0].FindBodySection(&imap.FetchItemBodySection{}), sent[msgs[0].UID]) {
		t.Error("FETCH BODY[] with the disk full: wrong content")
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil && !isCode(err, imap.ResponseCodeUnavailable) {
		t.Fatalf("STORE with the disk full: %v", err)
	}

	// Space returns: within 30 s a large message is taken again.
	if err := os.Remove(filepath.Join(dir, "later")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	big := randomMail(1000, 2<<20)
	for {
		uid, err := appendMsg(c, big)
		if err == nil {
			sent[uid] = big
			break
		}
		if !isCode(err, imap.ResponseCodeUnavailable) {
			t.Fatalf("APPEND after space returned: %v", err)
		}
		if time.Since(start) > 30*time.Second {
			out, _ := exec.Command("sh", "-c", "df -k "+dir+"; ls -la "+dir).CombinedOutput()
			t.Logf("%s", out)
			t.Fatalf("APPEND of 2 MiB still refused 30 s after 6 MiB were freed: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("service back %v after space returned", time.Since(start).Round(time.Millisecond))
	// Every acknowledged message is there, intact.
	for uid, want := range sent {
		msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("UID FETCH %d: %v", uid, err)
		}
		if got := msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true}); !bytes.Equal(got, want) {
			t.Errorf("UID %d: %d bytes back, %d sent", uid, len(got), len(want))
		}
	}
	if n := len(logs.Grep("disk full")); n != 1 {
		t.Errorf("%d log lines say the disk is full, want 1:\n%s", n, strings.Join(logs.Grep("disk"), "\n"))
	}
	// Once the disk has room to spare, the store says so (once) and the WAL,
	// which had taken the space, is emptied.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(logs.Grep("available again")) == 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(logs.Grep("available again")); n != 1 {
		t.Errorf("%d log lines say space returned, want 1", n)
	}
	if fi, err := os.Stat(filepath.Join(dir, mailstore.DBFile+"-wal")); err == nil && fi.Size() > 4<<20 {
		t.Errorf("WAL still %d bytes", fi.Size())
	}
}
