package mailstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestCrashChild is the child half of TestKill9: it delivers from many goroutines
// and prints each Message-ID once Deliver has returned (that is, once the store
// reported it committed).
func TestCrashChild(t *testing.T) {
	s, accts, ok := openChild(t, "SEALMAIL_CRASH_DIR")
	if !ok {
		return // not a test of its own: TestKill9 runs it
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d@crash", w, i)
				raw := []byte("From: a@example.test\r\nTo: b@example.test\r\nSubject: crash\r\nMessage-ID: <" + id + ">\r\n\r\n" + strings.Repeat("x", 4000) + "\r\n")
				a := accts[i%len(accts)]
				if _, err := s.Deliver(context.Background(), raw, time.Time{}, []mailstore.Target{{AccountID: a.ID}}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintln(out, "OK", a.ID, id)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestKill9 kills a process in the middle of many concurrent deliveries and
// checks that every delivery it reported committed is in the reopened store.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Setup(t, s, "k1@example.test", "k2@example.test", "k3@example.test")
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SEALMAIL_CRASH_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "OK" {
			acked[f[2]] = true
		}
		if len(acked) == 500 {
			cmd.Process.Kill() // SIGKILL: no chance to flush or close anything
			break
		}
	}
	for sc.Scan() {
		// Lines already in the pipe were acknowledged before the kill.
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "OK" {
			acked[f[2]] = true
		}
	}
	cmd.Wait()
	if len(acked) < 500 {
		t.Fatalf("child acknowledged only %d deliveries", len(acked))
	}

	s, err = mailstore.Open(dir, mailstore.Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	found := map[string]bool{}
	accts, _ := s.Accounts(ctx)
	for _, a := range accts {
		mb, err := s.Mailbox(ctx, a.ID, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		err = s.Fetch(ctx, mb.ID, nil, mailstore.FetchEnvelope, func(it mailstore.Item) error {
			found[it.Envelope.MessageID] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	lost := 0
	for id := range acked {
		if !found[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged deliveries lost", lost, len(acked))
	}
	st, err := s.StorageStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Refs != st.Messages {
		t.Errorf("reference counts inconsistent after crash: %+v", st)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("integrity: %v", err)
	}
	t.Logf("%d acknowledged, %d stored", len(acked), len(found))
}
