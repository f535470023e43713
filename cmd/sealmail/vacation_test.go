package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUserVacation: 'user vacation' sets, shows and turns off the reply the
// responder and the portal use; days are the server's, the last one included.
func TestUserVacation(t *testing.T) {
	data := setupData(t)
	ok(t, "", "user", "add", "nam@agency.example", "--data", data)
	s := openStore(t, data)
	ctx := context.Background()
	body := filepath.Join(t.TempDir(), "body.txt")
	text := "Tôi nghỉ phép đến hết ngày 3/1/2027.\nI am on leave until 3 January 2027.\n"
	if err := os.WriteFile(body, []byte("\ufeff"+text), 0o600); err != nil {
		t.Fatal(err)
	}

	out := ok(t, "", "user", "vacation", "nam@agency.example", "--subject", "Nghỉ phép cuối năm", "--body-file", body,
		"--from", "2026-12-24", "--until", "2027-01-03", "--data", data)
	if !strings.Contains(out, "from 2026-12-24 00:00 (UTC") || !strings.Contains(out, "until 2027-01-04 00:00 (UTC") {
		t.Errorf("set printed %q", out)
	}
	v, err := s.Vacation(ctx, "nam@agency.example")
	if err != nil || v == nil {
		t.Fatalf("Vacation: %v, %v", v, err)
	}
	if v.Subject != "Nghỉ phép cuối năm" || v.Body != text {
		t.Errorf("stored %q / %q", v.Subject, v.Body)
	}
	if want := time.Date(2026, 12, 24, 0, 0, 0, 0, time.Local); !v.From.Equal(want) {
		t.Errorf("From %s, want %s", v.From, want)
	}
	if want := time.Date(2027, 1, 4, 0, 0, 0, 0, time.Local); !v.Until.Equal(want) {
		t.Errorf("Until %s, want %s: the last day away is included", v.Until, want)
	}
	lastMoment := time.Date(2027, 1, 3, 23, 59, 0, 0, time.Local)
	if !v.Active(lastMoment) || v.Active(lastMoment.Add(time.Minute)) || v.Active(v.From.Add(-time.Minute)) {
		t.Error("the reply is not active exactly from 24/12 to the end of 3/1")
	}
	out = ok(t, "", "user", "vacation", "nam@agency.example", "--data", data)
	for _, want := range []string{"Nghỉ phép cuối năm", "Tôi nghỉ phép", "until 2027-01-04 00:00 (UTC"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	// The text from standard input, an exact time, no end.
	ok(t, "Vắng mặt.\n", "user", "vacation", "nam@agency.example", "--body-file", "-", "--from", time.Date(2026, 12, 24, 13, 30, 0, 0, time.Local).Format(time.RFC3339), "--data", data)
	v, _ = s.Vacation(ctx, "nam@agency.example")
	if v == nil || v.Body != "Vắng mặt.\n" || v.Subject != "" || !v.Until.IsZero() ||
		!v.From.Equal(time.Date(2026, 12, 24, 13, 30, 0, 0, time.Local)) {
		t.Fatalf("stored %+v", v)
	}

	// Mistakes change nothing.
	fails(t, "", []string{"user", "vacation", "nam@agency.example", "--until", "31/12/2026", "--data", data}, "YYYY-MM-DD")
	fails(t, "", []string{"user", "vacation", "nam@agency.example", "--from", "2027-01-05", "--until", "2027-01-03", "--data", data},
		"refused", "not after its start")
	fails(t, "", []string{"user", "vacation", "nam@agency.example", "--subject", "a\tb", "--data", data}, "one line")
	fails(t, "", []string{"user", "vacation", "nam@agency.example", "--off", "--subject", "x", "--data", data}, "--off")
	fails(t, "", []string{"user", "vacation", "ai@agency.example", "--subject", "x", "--data", data}, "there is no account ai@agency.example")
	fails(t, "", []string{"user", "vacation", "nam@agency.example", "--body-file", "/nonexistent", "--data", data}, "--body-file")
	if v2, _ := s.Vacation(ctx, "nam@agency.example"); v2 == nil || v2.Body != v.Body || !v2.From.Equal(v.From) {
		t.Fatalf("a refused command changed the reply: %+v", v2)
	}

	r := sealmail(t, "", "user", "vacation", "nam@agency.example", "--until", "2020-01-01", "--data", data)
	if r.code != 0 || !strings.Contains(r.stderr, "has passed") {
		t.Errorf("an end in the past: exit %d, stderr %q; want success with a warning", r.code, r.stderr)
	}
	out = ok(t, "", "user", "vacation", "nam@agency.example", "--off", "--data", data)
	if !strings.Contains(out, "is off") {
		t.Errorf("--off printed %q", out)
	}
	if v, err := s.Vacation(ctx, "nam@agency.example"); v != nil || err != nil {
		t.Fatalf("after --off: %+v, %v", v, err)
	}
	if out := ok(t, "", "user", "vacation", "nam@agency.example", "--data", data); !strings.Contains(out, "is off; kept") ||
		!strings.Contains(out, "until 2020-01-02 00:00") {
		t.Errorf("show after --off: %q", out)
	}
	ok(t, "", "user", "add", "ai@agency.example", "--data", data)
	if out := ok(t, "", "user", "vacation", "ai@agency.example", "--data", data); !strings.Contains(out, "no out-of-office reply") {
		t.Errorf("show without a reply ever set: %q", out)
	}
}
