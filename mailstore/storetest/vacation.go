package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
)

func testVacation(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	Setup(t, s, "an@example.test", "binh@example.test")
	v, err := s.Vacation(ctx, "an@example.test")
	if err != nil || v != nil {
		t.Fatalf("Vacation of a new account = %+v, %v; want nil, nil", v, err)
	}
	if _, err := s.Vacation(ctx, "nobody@example.test"); !errors.Is(err, mailstore.ErrNotFound) {
		t.Fatalf("Vacation of an unknown account: %v, want ErrNotFound", err)
	}
	if err := s.SetVacation(ctx, "nobody@example.test", &mailstore.Vacation{Subject: "x"}); !errors.Is(err, mailstore.ErrNotFound) {
		t.Fatalf("SetVacation of an unknown account: %v, want ErrNotFound", err)
	}

	from := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	until := time.Date(2027, 1, 3, 0, 0, 0, 0, time.UTC)
	want := mailstore.Vacation{Subject: "Nghỉ phép cuối năm", Body: "Tôi nghỉ phép đến ngày 3/1.\nI am away until 3 January.\n", From: from, Until: until}
	if err := s.SetVacation(ctx, "An@Example.test", &want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Vacation(ctx, "an@example.test")
	if err != nil || got == nil {
		t.Fatalf("Vacation after set = %v, %v", got, err)
	}
	if got.Subject != want.Subject || got.Body != want.Body || !got.From.Equal(from) || !got.Until.Equal(until) {
		t.Fatalf("Vacation = %+v, want %+v", *got, want)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{from.Add(-time.Second), false}, {from, true}, {until.Add(-time.Second), true}, {until, false}} {
		if got.Active(c.at) != c.want {
			t.Errorf("Active(%s) = %v, want %v", c.at, !c.want, c.want)
		}
	}
	open := mailstore.Vacation{Subject: "s"}
	if !open.Active(time.Time{}) || !open.Active(time.Now().AddDate(100, 0, 0)) {
		t.Error("a vacation without dates is not always active")
	}
	if v, _ := s.Vacation(ctx, "binh@example.test"); v != nil {
		t.Fatalf("another account's vacation is %+v", v)
	}

	for name, bad := range map[string]mailstore.Vacation{
		"header injection": {Subject: "Nghỉ\r\nBcc: all@example.test"},
		"control in body":  {Body: "a\x00b"},
		"not UTF-8":        {Body: "\xff"},
		"long subject":     {Subject: strings.Repeat("đ", mailstore.MaxVacationSubject+1)},
		"long body":        {Body: strings.Repeat("a", mailstore.MaxVacationBody+1)},
		"until before":     {Subject: "s", From: until, Until: from},
		"empty period":     {Subject: "s", From: from, Until: from},
	} {
		if err := s.SetVacation(ctx, "an@example.test", &bad); !errors.Is(err, mailstore.ErrInvalid) {
			t.Errorf("%s: SetVacation: %v, want ErrInvalid", name, err)
		}
	}
	if got, _ := s.Vacation(ctx, "an@example.test"); got == nil || got.Subject != want.Subject {
		t.Fatalf("a refused SetVacation changed the vacation: %+v", got)
	}

	// Once per sender per period, remembered by the store.
	t0 := time.Now()
	week := 7 * 24 * time.Hour
	claim := func(sender string, at time.Time) bool {
		t.Helper()
		ok, err := s.ClaimVacationReply(ctx, "an@example.test", sender, at, week)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !claim("x@remote.test", t0) {
		t.Fatal("first claim refused")
	}
	if claim("X@Remote.test", t0.Add(time.Hour)) {
		t.Fatal("second claim within the week granted")
	}
	if !claim("y@remote.test", t0.Add(time.Hour)) {
		t.Fatal("claim for another sender refused")
	}
	if ok, err := s.ClaimVacationReply(ctx, "binh@example.test", "x@remote.test", t0, week); err != nil || !ok {
		t.Fatalf("another account's claim: %v, %v", ok, err)
	}
	if claim("x@remote.test", t0.Add(week-time.Second)) {
		t.Fatal("claim just before the week is over granted")
	}
	if !claim("x@remote.test", t0.Add(week)) {
		t.Fatal("claim a week later refused")
	}
	// A released claim (the reply could not be queued) may be made again.
	at := t0.Add(3 * week)
	if !claim("z@remote.test", at) {
		t.Fatal("claim refused")
	}
	if err := s.ReleaseVacationReply(ctx, "an@example.test", "z@remote.test", at); err != nil {
		t.Fatal(err)
	}
	if !claim("z@remote.test", at) {
		t.Fatal("claim after release refused")
	}

	// The same notice saved again keeps the record; a new text starts afresh.
	if err := s.SetVacation(ctx, "an@example.test", &mailstore.Vacation{Subject: want.Subject, Body: want.Body}); err != nil {
		t.Fatal(err)
	}
	if claim("z@remote.test", at) {
		t.Fatal("saving the same text again forgot whom it answered")
	}
	if err := s.SetVacation(ctx, "an@example.test", &mailstore.Vacation{Subject: "Mới", Body: want.Body}); err != nil {
		t.Fatal(err)
	}
	if !claim("z@remote.test", at) {
		t.Fatal("a new text is not sent to senders answered before")
	}
	if err := s.SetVacation(ctx, "an@example.test", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Vacation(ctx, "an@example.test"); v != nil || err != nil {
		t.Fatalf("Vacation after off = %+v, %v", v, err)
	}
	// Off, it is kept for next time, as it was last set.
	if v, on, err := s.SavedVacation(ctx, "an@example.test"); err != nil || on || v == nil || v.Subject != "Mới" || v.Body != want.Body {
		t.Fatalf("SavedVacation after off = %+v, %v, %v", v, on, err)
	}
	if v, on, err := s.SavedVacation(ctx, "binh@example.test"); err != nil || on || v != nil {
		t.Fatalf("SavedVacation of an account that never set one = %+v, %v, %v", v, on, err)
	}
	if err := s.SetVacation(ctx, "an@example.test", &want); err != nil {
		t.Fatal(err)
	}
	if !claim("z@remote.test", at) {
		t.Fatal("a vacation turned off and on again is not sent to senders answered before")
	}
	if err := s.RemoveAccount(ctx, "an@example.test"); err != nil {
		t.Fatalf("removing an account with a vacation: %v", err)
	}
}
