package mailstore_test

import (
	"context"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

// TestWatchLogout: a password set in another process (a second store on the
// same files, as 'sealmail user passwd' is) ends the sessions of that
// account that logged in before, whether they began watching before the
// change was seen or after; not those of other accounts, nor a login with
// the new password.
func TestWatchLogout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *mailstore.Store {
		s, err := mailstore.Open(dir, mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams, PollInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	server, admin := open(), open()
	storetest.Setup(t, server, "nam@example.test", "lan@example.test")
	login := func(addr, pw string) mailstore.Account {
		t.Helper()
		a, err := server.Authenticate(ctx, addr, pw)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	watch := func(a mailstore.Account) (<-chan struct{}, func()) {
		ended := make(chan struct{})
		stop := server.WatchLogout(a, func() { close(ended) })
		return ended, stop
	}
	nam, lan := login("nam@example.test", "pw"), login("lan@example.test", "pw")
	namEnded, stop := watch(nam)
	defer stop()
	lanEnded, stop := watch(lan)
	defer stop()
	// Logged in before the change, watching only after the server saw it.
	late := login("nam@example.test", "pw")

	if err := admin.SetPassword(ctx, "nam@example.test", "mật khẩu mới"); err != nil {
		t.Fatal(err)
	}
	<-namEnded // no deadline: go test's -timeout ends a wait that never ends
	lateEnded, stop := watch(late)
	defer stop()
	<-lateEnded // logged in before the change, watching after it was seen
	// Sessions that must go on: each watches through another change of
	// nam's, whose ending is the sign that the notifier went past it.
	after := login("nam@example.test", "mật khẩu mới")
	afterEnded, stop := watch(after)
	defer stop()
	stopped := login("nam@example.test", "mật khẩu mới")
	stoppedEnded, stopStopped := watch(stopped)
	stopStopped()
	if err := admin.SetPassword(ctx, "lan@example.test", "khác"); err != nil {
		t.Fatal(err)
	}
	<-lanEnded
	select {
	case <-afterEnded:
		t.Error("a session that logged in with the new password ended")
	case <-stoppedEnded:
		t.Error("a watch that was stopped fired")
	default:
	}
}
