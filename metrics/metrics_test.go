package metrics

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"
)

type queue struct{}

func (queue) QueueStats(context.Context) (int, time.Time, error) {
	return 3, time.Now().Add(-time.Hour), nil
}

// TestNamesDocumented: every metric sealmail exports is in docs/metrics.md,
// and every name there is exported.
func TestNamesDocumented(t *testing.T) {
	m := New(slog.New(slog.DiscardHandler))
	m.WatchQueue(queue{})
	// A vector appears once it has a value: touch every hook.
	c := m.Conns("imap")
	c.Opened()
	c.LoggedIn()
	c.Refused("max-connections")
	m.Login("failure")
	m.SMTPReply("mx", "DATA", 250, "2.0.0")
	m.SMTPReply("mx", "RCPT", 550, "5.1.1")
	m.StoreCommit(time.Millisecond, 3)
	m.StoreCheckpoint(20000, 10, true)
	m.IMAPCommand("FETCH", time.Millisecond)
	m.Document("verified", "pass")
	m.TLSFailure("imap", "untrusted-certificate")
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, f := range fams {
		if n := f.GetName(); regexp.MustCompile(`^sealmail_`).MatchString(n) {
			exported = append(exported, n)
		}
	}
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(sealmail_[a-z_]+)`").FindAllSubmatch(doc, -1) {
		documented = append(documented, string(m[1]))
	}
	slices.Sort(exported)
	slices.Sort(documented)
	if !slices.Equal(exported, documented) {
		t.Errorf("exported %v\ndocumented %v", exported, documented)
	}
}

// TestUnknownIMAPCommand: names a client makes up do not become labels.
func TestUnknownIMAPCommand(t *testing.T) {
	m := New(slog.New(slog.DiscardHandler))
	for _, n := range []string{"XYZZY1", "XYZZY2", "UID FETCH"} {
		m.IMAPCommand(n, time.Millisecond)
	}
	fams, _ := m.reg.Gather()
	for _, f := range fams {
		if f.GetName() != "sealmail_imap_command_seconds" {
			continue
		}
		var labels []string
		for _, mm := range f.GetMetric() {
			labels = append(labels, mm.GetLabel()[0].GetValue())
		}
		slices.Sort(labels)
		if !slices.Equal(labels, []string{"UID FETCH", "other"}) {
			t.Errorf("command labels %v", labels)
		}
	}
}
