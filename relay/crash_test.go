package relay

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"sealmail/internal/testwait"
	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestCrashChild is the process TestCrash kills: it enqueues messages, saying
// each one's number once Enqueue returned, while workers deliver them.
func TestCrashChild(t *testing.T) {
	dir, port := os.Getenv("RELAY_CRASH_DIR"), os.Getenv("RELAY_CRASH_PORT")
	if dir == "" {
		return // not a test of its own: TestCrash runs it
	}
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test", Port: port, Workers: 2}
	go q.Run(context.Background())
	// Bounded, in case the parent died before killing it.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
		msg := storetest.Msg("a@example.test", "x@remote.test", fmt.Sprintf("crash %d", i), "b")
		if err := q.Enqueue(context.Background(), "a@example.test", []string{"x@remote.test"}, msg); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("queued %d\n", i)
	}
}

// TestCrash kills a process that is queueing and delivering, then lets another
// instance finish: every acknowledged message arrives, and duplicates are
// bounded by the transactions that were under way at the kill (at most one
// per worker).
func TestCrash(t *testing.T) {
	ts, _ := startServer(t)
	dir := t.TempDir()
	openStoreAt(t, dir).Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RELAY_CRASH_DIR="+dir, "RELAY_CRASH_PORT="+ts.port())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	read := func(line string) {
		var n int
		if _, err := fmt.Sscanf(line, "queued %d", &n); err == nil {
			acked = n
		}
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		read(sc.Text())
		// Kill once some mail went out, so deliveries are under way too.
		if acked >= 150 && len(ts.messages()) > 20 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	// The child went on queueing while the parent read: what it said before
	// the kill is still in the pipe, acknowledged all the same.
	for sc.Scan() {
		read(sc.Text())
	}
	cmd.Wait()
	if acked < 150 {
		t.Fatalf("child stopped early after %d", acked)
	}
	sentBefore := len(ts.messages())

	s := openStoreAt(t, dir)
	q := &Queue{Store: s, Resolver: mxTo("remote.test"), Hostname: "mail.example.test", Port: ts.port()}
	runQueue(t, q)
	testwait.For(t, "the queue to drain", func() bool { return queueLen(t, s) == 0 })

	subj := regexp.MustCompile(`Subject: crash (\d+)`)
	count := map[int]int{}
	for _, m := range ts.messages() {
		sm := subj.FindSubmatch(m.data)
		if sm == nil {
			t.Fatalf("unexpected message %s", m.data)
		}
		n, _ := strconv.Atoi(string(sm[1]))
		count[n]++
	}
	dups := 0
	for i := 0; i <= acked; i++ {
		switch c := count[i]; {
		case c == 0:
			t.Errorf("acknowledged message %d lost", i)
		case c > 2:
			t.Errorf("message %d sent %d times", i, c)
		case c == 2:
			dups++
		}
	}
	// At most one message past the last acknowledged one: committed, not yet said.
	if len(count) > acked+2 {
		t.Errorf("%d distinct messages arrived, %d acknowledged", len(count), acked+1)
	}
	if dups > 2 {
		t.Errorf("%d duplicates, want at most one per worker (2)", dups)
	}
	t.Logf("acknowledged %d, sent %d before the kill, %d duplicates", acked+1, sentBefore, dups)
}

func openStoreAt(t testing.TB, dir string) *mailstore.Store {
	t.Helper()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
