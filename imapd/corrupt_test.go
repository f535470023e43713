package imapd

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestFetchDamagedContent damages one message's content in the blob store
// and removes another's: FETCH of either body answers NO [CORRUPTION] naming
// it, never bytes; what the metadata holds (flags, envelope, size) is still
// served, and so is every sound message, in the same session.
func TestFetchDamagedContent(t *testing.T) {
	e := newEnv(t)
	var uids []uint32
	var sums []mailstore.Sum
	for i, subject := range []string{"Công văn lành", "Công văn hỏng", "Công văn mất"} {
		msg := storetest.Msg("x@other.example", "nam@example.test", subject, fmt.Sprintf("Nội dung %d, Đà Nẵng.", i))
		uids = append(uids, e.deliver(t, e.accts[0], "", msg))
		sums = append(sums, sha256.Sum256(msg))
	}
	storetest.Damage(t, e.store.Blobs(), sums[1], storetest.Garble) // same size: only the hash tells
	storetest.Damage(t, e.store.Blobs(), sums[2], storetest.Remove)

	c, err := tls.Dial("tcp", e.tls, e.client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	tag := 0
	// send returns the untagged lines and the tagged answer of a command.
	send := func(cmd string) ([]string, string) {
		t.Helper()
		tag++
		tg := fmt.Sprintf("c%d ", tag)
		fmt.Fprintf(c, "%s%s\r\n", tg, cmd)
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(line, tg) {
				return lines, strings.TrimSpace(strings.TrimPrefix(line, tg))
			}
			lines = append(lines, line)
		}
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	send("LOGIN nam@example.test pw")
	send("SELECT INBOX")
	for _, uid := range uids[1:] {
		for _, item := range []string{"BODY.PEEK[]", "BODY.PEEK[TEXT]", "RFC822", "BINARY.PEEK[1]"} {
			lines, answer := send(fmt.Sprintf("UID FETCH %d (%s)", uid, item))
			if !strings.HasPrefix(answer, "NO [CORRUPTION]") || !strings.Contains(answer, fmt.Sprint(uid)) {
				t.Errorf("UID FETCH %d %s: %q, want NO [CORRUPTION] naming the message", uid, item, answer)
			}
			for _, l := range lines {
				if strings.Contains(l, "Nội dung") || strings.Contains(l, "BODY[") || strings.Contains(l, "RFC822 ") {
					t.Errorf("UID FETCH %d %s served content: %q", uid, item, l)
				}
			}
		}
		lines, answer := send(fmt.Sprintf("UID FETCH %d (FLAGS ENVELOPE RFC822.SIZE)", uid))
		if answer[:2] != "OK" || len(lines) != 1 || !strings.Contains(lines[0], "ENVELOPE") {
			t.Errorf("UID FETCH %d of metadata: %q %q", uid, lines, answer)
		}
	}
	lines, answer := send(fmt.Sprintf("UID FETCH %d (BODY.PEEK[TEXT])", uids[0]))
	if answer[:2] != "OK" || !strings.Contains(strings.Join(lines, ""), "FETCH") {
		t.Errorf("the sound message after the damaged ones: %q %q", lines, answer)
	}
	if _, answer := send("NOOP"); answer[:2] != "OK" {
		t.Errorf("session after the damage: %q", answer)
	}
}
