package mailstore_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

var acceptMsg = storetest.Msg("a1@example.test", "a2@example.test, r@remote.test", "local and remote", "one transaction")

// TestAcceptChild is the child half of TestKill9Accept: one message for two
// local mailboxes and a remote recipient.
func TestAcceptChild(t *testing.T) {
	s, accts, ok := openChild(t, "SEALMAIL_ACCEPT_DIR")
	if !ok {
		return // not a test of its own: TestKill9Accept runs it
	}
	acceptBoth(t, s, accts)
}

// openChild opens the store of a crash test's child process, in the
// directory named by environment variable env, and lists its accounts; ok
// is false when the test binary runs other than as that child (the child
// then returns at once: as in os/exec's helper processes, it neither
// passes a check nor skips one).
func openChild(t *testing.T, env string) (s *mailstore.Store, accts []mailstore.Account, ok bool) {
	dir := os.Getenv(env)
	if dir == "" {
		return nil, nil, false
	}
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	accts, err = s.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, accts, true
}

func acceptBoth(t *testing.T, s *mailstore.Store, accts []mailstore.Account) {
	_, err := s.Accept(context.Background(), mailstore.Delivery{
		Content: mailstore.Bytes(acceptMsg),
		Targets: []mailstore.Target{{AccountID: accts[0].ID}, {AccountID: accts[1].ID}},
		From:    "a1@example.test",
		Remote:  []string{"r@remote.test"},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKill9Accept is issue 15's defect 11: a submission to local and remote
// recipients used to be delivered, then queued, in two transactions, so a
// failure between the two left local copies that the client's retry
// duplicated. The process is killed between the local deliveries and the
// queueing: nothing may be stored, and the retry stores each copy once.
func TestKill9Accept(t *testing.T) {
	dir := t.TempDir()
	s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Setup(t, s, "a1@example.test", "a2@example.test")
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SEALMAIL_ACCEPT_DIR="+dir, "SEALMAIL_FAULT_POINT=accept:delivered", "SEALMAIL_FAULT_AT=1")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("child was not killed between delivering and queueing:\n%s", out)
	}

	s, err = mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	count := func() (msgs, queued int) {
		st, err := s.StorageStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		q, err := s.Queue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(st.Messages), len(q)
	}
	if m, q := count(); m != 0 || q != 0 {
		t.Fatalf("after the crash: %d messages, %d queue entries; want none of either", m, q)
	}
	// The client got no answer and sends again.
	accts, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acceptBoth(t, s, accts)
	if m, q := count(); m != 2 || q != 1 {
		t.Errorf("after the retry: %d messages, %d queue entries; want 2 and 1", m, q)
	}
	if err := s.Check(ctx); err != nil {
		t.Error(err)
	}
}
