package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"sealmail/mailstore"
)

// testWebSessions: sessions are found by id with the account as it is now,
// end one by one, all of an account's at a password change (only that
// account's), and in a sweep once expired or idle.
func testWebSessions(t *testing.T, s *mailstore.Store) {
	ctx := context.Background()
	accts := Setup(t, s, "web1@example.test", "web2@example.test")
	now := time.Unix(time.Now().Unix(), 0)
	add := func(addr, id string, seen, expires time.Time) {
		t.Helper()
		ws := mailstore.WebSession{ID: id, CSRF: "tok-" + id, Created: seen, Seen: seen, Expires: expires}
		if err := s.CreateWebSession(ctx, addr, ws); err != nil {
			t.Fatal(err)
		}
	}
	live := func(id string) bool {
		t.Helper()
		_, err := s.WebSession(ctx, id)
		if err != nil && !errors.Is(err, mailstore.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	add(accts[0].Address, "a1", now, now.Add(time.Hour))
	add(accts[0].Address, "a2", now, now.Add(time.Hour))
	add(accts[1].Address, "b1", now, now.Add(time.Hour))
	if err := s.CreateWebSession(ctx, "nobody@example.test", mailstore.WebSession{ID: "x"}); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("a session of an unknown account: %v", err)
	}

	if err := s.SetQuota(ctx, accts[0].Address, 5<<20); err != nil {
		t.Fatal(err)
	}
	ws, err := s.WebSession(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if ws.Account.Address != accts[0].Address || ws.Account.Quota != 5<<20 || ws.CSRF != "tok-a1" ||
		!ws.Seen.Equal(now) || !ws.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("session a1: %+v", ws)
	}
	if err := s.TouchWebSession(ctx, "a1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ws, _ := s.WebSession(ctx, "a1"); !ws.Seen.Equal(now.Add(time.Minute)) {
		t.Errorf("touched session seen at %v", ws.Seen)
	}

	if err := s.DeleteWebSession(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	if live("a2") || !live("a1") {
		t.Error("deleting a2 did not end exactly a2")
	}
	add(accts[0].Address, "a3", now, now.Add(time.Hour))
	if err := s.SetPassword(ctx, accts[0].Address, "mật khẩu mới 2026"); err != nil {
		t.Fatal(err)
	}
	if live("a1") || live("a3") || !live("b1") {
		t.Error("a password change did not end exactly the account's sessions")
	}

	add(accts[1].Address, "idle", now.Add(-2*time.Hour), now.Add(time.Hour))
	add(accts[1].Address, "old", now, now.Add(-time.Second))
	n, err := s.DeleteWebSessions(ctx, now, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || live("idle") || live("old") || !live("b1") {
		t.Errorf("the sweep ended %d sessions; b1 live %v", n, live("b1"))
	}
	if err := s.RemoveAccount(ctx, accts[1].Address); err != nil {
		t.Fatal(err)
	}
	if live("b1") {
		t.Error("a removed account's session lives on")
	}
}
