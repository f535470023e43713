package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"sealmail/internal/dovecottest"
	"sealmail/migrate"
)

// fill puts the fixtures into user's mailbox on d through IMAP APPEND, so
// Dovecot keeps them as it keeps any mail.
func fill(t *testing.T, d *dovecottest.Server, user string, fs []fixture) {
	t.Helper()
	c := d.Dial(t, user)
	created := map[string]bool{"INBOX": true, dovecottest.SentName: true}
	create := func(name string) {
		if created[name] {
			return
		}
		created[name] = true
		err := c.Create(name, nil).Wait()
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
			return // from an earlier fill
		}
		if err != nil {
			t.Fatalf("CREATE %q: %v", name, err)
		}
	}
	create(dovecotName(emptyFolder))
	for _, f := range fs {
		name := dovecotName(f.folder)
		create(name)
		var flags []imap.Flag
		for _, fl := range f.flags {
			flags = append(flags, imap.Flag(fl))
		}
		cmd := c.Append(name, int64(len(f.content)), &imap.AppendOptions{Flags: flags, Time: f.date})
		cmd.Write([]byte(f.content))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("APPEND to %q: %v", name, err)
		}
	}
	c.Logout().Wait()
}

// dovecotName is the name of a sealmail folder on the test's Dovecot.
func dovecotName(folder string) string {
	if folder == "Sent" {
		return dovecottest.SentName
	}
	return strings.ReplaceAll(folder, "/", ".")
}

func TestIMAPFromDovecot(t *testing.T) {
	dv := dovecottest.Start(t)
	want := fixtures()
	fill(t, dv, "anna", want)
	src := migrate.IMAPSource{URL: dv.URL(), User: "anna", Password: dovecottest.Password, TLS: dv.TLS()}
	ctx := context.Background()

	d := newDest(t)
	var last migrate.Progress
	sum, err := migrate.IMAP(ctx, src, d, migrate.Options{Progress: func(p migrate.Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != len(want) || sum.Skipped != 0 || sum.Errors != 0 {
		t.Errorf("first run: %v; want %d messages copied", sum, len(want))
	}
	if last.Done != len(want) || last.Total != len(want) {
		t.Errorf("progress at the end: %+v, want %d of %d done", last, len(want), len(want))
	}
	checkArrived(t, d, want)

	// Again: nothing new.
	sum, err = migrate.IMAP(ctx, src, d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 0 || sum.Skipped != len(want) {
		t.Errorf("second run: %v; want nothing copied, %d skipped", sum, len(want))
	}
	checkArrived(t, d, want)

	// A message arriving on the old server after the first run is copied by
	// the next, alone.
	late := fixture{"Công văn đến", strings.Replace(want[0].content, "Message-ID: <1@", "Message-ID: <late@", 1), []string{`$Late`}, want[0].date}
	fill(t, dv, "anna", []fixture{late})
	sum, err = migrate.IMAP(ctx, src, d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 1 || sum.Skipped != len(want) {
		t.Errorf("run after a new message: %v; want 1 copied, %d skipped", sum, len(want))
	}
	checkArrived(t, d, append(want, late))
}

// TestIMAPInterrupted cancels an import three times, each after two more
// messages, then runs it to the end: every message arrives exactly once.
func TestIMAPInterrupted(t *testing.T) {
	dv := dovecottest.Start(t)
	want := fixtures()
	fill(t, dv, "anna", want)
	src := migrate.IMAPSource{URL: dv.URL(), User: "anna", Password: dovecottest.Password, TLS: dv.TLS()}
	d := newDest(t)
	copied := 0
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		sum, err := migrate.IMAP(ctx, src, d, migrate.Options{Progress: func(p migrate.Progress) {
			if p.Done >= copied+2 {
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: error %v, want context.Canceled", err)
		}
		copied += sum.Messages
		t.Logf("interrupted run: %v", sum)
	}
	if copied >= len(want) {
		t.Fatalf("the interrupted runs copied %d of %d messages: nothing left to resume", copied, len(want))
	}
	sum, err := migrate.IMAP(context.Background(), src, d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if copied+sum.Messages != len(want) {
		t.Errorf("interrupted runs copied %d, the last %d: want %d in all", copied, sum.Messages, len(want))
	}
	checkArrived(t, d, want)
}

func TestIMAPBadSource(t *testing.T) {
	dv := dovecottest.Start(t)
	d := newDest(t)
	ctx := context.Background()
	for _, tc := range []struct {
		src  migrate.IMAPSource
		want string
	}{
		{migrate.IMAPSource{URL: dv.URL(), User: "anna", Password: "wrong", TLS: dv.TLS()}, "logging in"},
		// Without the test CA, the self-signed certificate is refused.
		{migrate.IMAPSource{URL: dv.URL(), User: "anna", Password: dovecottest.Password}, "certificate"},
		{migrate.IMAPSource{URL: "http://" + dv.Addr, User: "anna", Password: dovecottest.Password}, "scheme"},
	} {
		_, err := migrate.IMAP(ctx, tc.src, d, migrate.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s as %s/%s: error %v, want one about %q", tc.src.URL, tc.src.User, tc.src.Password, err, tc.want)
		}
	}
}
