package smtpd

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

const helperDirEnv = "SMTPD_TEST_HELPER_DIR"

// TestHelperServer is not a test: TestDurability runs it in a child process as
// the server it kills.
func TestHelperServer(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return // not a test of its own: TestDurability runs it
	}
	st, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR=%s\n", l.Addr())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := &Server{Store: st, Hostname: "mail.example.test", Logger: log}
	t.Fatal(srv.ServeMX(l)) // until killed
}

// TestDurability kills the server (SIGKILL) while many clients send, then
// checks that every message that got its 250 is in the store, which opens
// cleanly and counts its content consistently.
func TestDurability(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	storetest.Setup(t, st, "a@example.test", "b@example.test")
	must(t, st.AddAlias(context.Background(), "both@example.test", []string{"a@example.test", "b@example.test"}))
	must(t, st.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var addr string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR="); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("helper server did not start")
	}
	go func() {
		for sc.Scan() { // keep the pipe drained
		}
	}()

	const clients, killAfter = 16, 200
	var (
		mu    sync.Mutex
		acked = map[string][]string{} // Message-ID → recipients
		wg    sync.WaitGroup
		kill  = make(chan struct{})
		once  sync.Once
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				return
			}
			defer c.Close()
			for n := 0; ; n++ {
				id := fmt.Sprintf("%d.%d@durability.test", i, n)
				to := []string{"a@example.test"}
				if n%3 == 0 {
					to = []string{"both@example.test"}
				}
				msg := fmt.Sprintf("From: x@remote.test\r\nTo: %s\r\nMessage-ID: <%s>\r\nSubject: %d/%d\r\n\r\n%s\r\n",
					to[0], id, i, n, strings.Repeat("body line\r\n", 50*(n%7+1)))
				if err := send(c, "x@remote.test", to, msg); err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked[id] = to
				if len(acked) >= killAfter {
					once.Do(func() { close(kill) })
				}
				mu.Unlock()
			}
		}()
	}
	gaveUp := make(chan struct{})
	go func() { wg.Wait(); close(gaveUp) }()
	// No wall-clock bound: how fast 200 messages get through is the
	// machine's business; only clients that all stopped early are a failure.
	select {
	case <-kill:
	case <-gaveUp:
		t.Fatal("every client stopped before enough messages got through")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	wg.Wait()

	st = openStore(t, dir)
	defer st.Close()
	ctx := context.Background()
	found := map[string]map[string]bool{} // address → Message-IDs stored
	for _, addr := range []string{"a@example.test", "b@example.test"} {
		found[addr] = map[string]bool{}
		a, err := st.Account(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		mb, err := st.Mailbox(ctx, a.ID, mailstore.Inbox)
		if err != nil {
			t.Fatal(err)
		}
		err = st.Fetch(ctx, mb.ID, nil, mailstore.FetchEnvelope, func(it mailstore.Item) error {
			found[addr][it.Envelope.MessageID] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	lost := 0
	for id, to := range acked {
		want := []string{"a@example.test"}
		if to[0] == "both@example.test" {
			want = append(want, "b@example.test")
		}
		for _, addr := range want {
			if !found[addr][id] {
				lost++
				t.Errorf("%s acknowledged but not in %s's INBOX", id, addr)
			}
		}
	}
	stats, err := st.StorageStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Refs != stats.Messages {
		t.Errorf("inconsistent after the crash: %+v", stats)
	}
	t.Logf("%d messages acknowledged before the kill, %d lost; store: %+v", len(acked), lost, stats)
}
