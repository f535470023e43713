package mailstore_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestStepsChild is the child half of TestKill9Steps: it delivers (some
// contents again and again, so deliveries meet reclaim), expunges half of
// what it delivered and reclaims, from several goroutines, printing each
// delivery once Deliver returned. A fault point kills it (export_test.go).
func TestStepsChild(t *testing.T) {
	s, accts, ok := openChild(t, "SEALMAIL_STEPS_DIR")
	if !ok {
		return // not a test of its own: TestKill9Steps runs it
	}
	ctx := context.Background()
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	stop := time.Now().Add(20 * time.Second)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				// Every other message is one of four shared contents.
				body := fmt.Sprintf("unique %d %d %d", os.Getpid(), w, i)
				if i%2 == 0 {
					body = fmt.Sprintf("shared %d", i%4)
				}
				raw := []byte("From: a@example.test\r\nTo: b@example.test\r\nSubject: steps\r\n\r\n" + body + "\r\n")
				a := accts[(w+i)%len(accts)]
				ds, err := s.Deliver(ctx, raw, time.Time{}, []mailstore.Target{{AccountID: a.ID}})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "OK %d %d %s\n", ds[0].MailboxID, ds[0].UID, strconv.Quote(string(raw)))
				out.Flush()
				mu.Unlock()
				if i%2 == 1 {
					// Announced first: once expunging starts, either outcome is right.
					mu.Lock()
					fmt.Fprintf(out, "GONE %d %d\n", ds[0].MailboxID, ds[0].UID)
					out.Flush()
					mu.Unlock()
					s.StoreFlags(ctx, ds[0].MailboxID, []uint32{ds[0].UID}, mailstore.FlagsAdd, []string{`\Deleted`})
					s.Expunge(ctx, ds[0].MailboxID, []uint32{ds[0].UID})
					s.Reclaim(ctx)
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
}

// TestKill9Steps kills a process at every step of storing content (after
// the Put, after the group's Sync, after the commit) and of reclaiming it
// (after the delete, after its commit), several times each, and checks after
// each crash that every acknowledged delivery is there with its content and
// that nothing refers to missing content.
func TestKill9Steps(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop")
	}
	dir := t.TempDir()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Setup(t, s, "s1@example.test", "s2@example.test")
	s.Close()
	type key struct {
		mb  int64
		uid uint32
	}
	acked := map[key]string{}
	points := []string{"content:put", "content:synced", "commit:done", "reclaim:deleted", "reclaim:committed"}
	for _, point := range points {
		for _, at := range []int{1, 2 + rand.IntN(10), 20 + rand.IntN(60)} {
			cmd := exec.Command(os.Args[0], "-test.run=^TestStepsChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SEALMAIL_STEPS_DIR="+dir, "SEALMAIL_FAULT_POINT="+point, "SEALMAIL_FAULT_AT="+strconv.Itoa(at))
			outb, _ := cmd.Output()
			if cmd.ProcessState.ExitCode() == 0 {
				t.Errorf("%s #%d: child was not killed", point, at)
			}
			for _, line := range strings.Split(string(outb), "\n") {
				f := strings.SplitN(line, " ", 4)
				if len(f) < 3 {
					continue
				}
				mb, _ := strconv.ParseInt(f[1], 10, 64)
				uid, _ := strconv.ParseUint(f[2], 10, 32)
				k := key{mb, uint32(uid)}
				switch f[0] {
				case "OK":
					raw, err := strconv.Unquote(f[3])
					if err != nil {
						t.Fatalf("child output %q: %v", line, err)
					}
					acked[k] = raw
				case "GONE":
					delete(acked, k)
				}
			}
			s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
			if err != nil {
				t.Fatalf("%s #%d: reopen: %v", point, at, err)
			}
			ctx := context.Background()
			for k, raw := range acked {
				var got *mailstore.Item
				s.Fetch(ctx, k.mb, []uint32{k.uid}, mailstore.FetchContent, func(it mailstore.Item) error {
					got = &it
					return nil
				})
				switch {
				case got == nil:
					t.Errorf("%s #%d: acknowledged delivery %v lost", point, at, k)
				case got.Err != nil:
					t.Errorf("%s #%d: %v: %v", point, at, k, got.Err)
				case string(got.Content) != raw:
					t.Errorf("%s #%d: %v: content differs", point, at, k)
				}
			}
			rep, err := s.CheckContent(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Missing)+len(rep.Corrupt) > 0 {
				t.Errorf("%s #%d: dangling references: %+v", point, at, rep)
			}
			if err := s.Check(ctx); err != nil {
				t.Errorf("%s #%d: %v", point, at, err)
			}
			t.Logf("%s #%d: %d acknowledged messages kept, %d contents, %d orphans", point, at, len(acked), rep.Referenced, rep.Orphans)
			s.Close()
			if t.Failed() {
				return
			}
		}
	}
}
