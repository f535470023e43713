// Package migrate brings mailboxes into sealmail from the system an agency
// leaves (a running IMAP server, a Maildir++ tree, an mbox file) and takes them
// out again (Maildir++, mbox), keeping folders, flags, keywords and internal
// dates.
//
// An import is idempotent and resumable: every message is stored together with
// its origin (the source folder and the message's name there, see
// mailstore.Origin) in one transaction, so running an import again, or after it
// was interrupted at any point, copies only what is not there yet and never a
// message twice. Messages go straight into the store with their flags and
// internal date, not through SMTP, and count against the account's quota.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"sealmail/mailstore"
)

// Dest is the account messages are imported into.
type Dest struct {
	Store   *mailstore.Store
	Account mailstore.Account
}

// Options tune an import or export. The zero value is fine.
type Options struct {
	// Progress, if set, is called after each message and at each folder.
	Progress func(Progress)
	// Log receives what went wrong with single messages; nil: slog.Default().
	Log *slog.Logger
}

func (o *Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}

// Progress is where a run stands.
type Progress struct {
	Folder string // the sealmail name of the folder being copied
	Done   int    // messages handled so far (copied, skipped or failed)
	Total  int    // messages to handle in all; 0 while unknown
	Bytes  int64  // bytes copied so far
}

// Summary is what a run did.
type Summary struct {
	Folders  int   // folders handled
	Messages int   // messages copied
	Bytes    int64 // bytes copied
	Skipped  int   // messages there from an earlier run
	Errors   int   // messages that could not be copied (see the log)
}

// Add adds the counts of t to s, for a run over many accounts.
func (s *Summary) Add(t Summary) {
	s.Folders += t.Folders
	s.Messages += t.Messages
	s.Bytes += t.Bytes
	s.Skipped += t.Skipped
	s.Errors += t.Errors
}

func (s Summary) String() string {
	return fmt.Sprintf("%d folders, %d messages copied (%d bytes), %d skipped (copied before), %d errors",
		s.Folders, s.Messages, s.Bytes, s.Skipped, s.Errors)
}

// run carries the state of one import or export.
type run struct {
	opt   Options
	sum   Summary
	total int
	done  int
	cur   string // current folder
}

func (r *run) folder(name string) {
	r.cur = name
	r.sum.Folders++
	r.report()
}

func (r *run) report() {
	if r.opt.Progress != nil {
		r.opt.Progress(Progress{Folder: r.cur, Done: r.done, Total: r.total, Bytes: r.sum.Bytes})
	}
}

// message is one message read from a source, ready to store.
type message struct {
	content []byte
	flags   []string
	date    time.Time
	origin  mailstore.Origin
}

// put stores m in the folder of d. A message imported before counts as
// skipped; one the store refuses counts as an error and the run goes on; a
// full quota, a full disk or a closed store end the run, since every further
// message would fail the same way.
func (r *run) put(ctx context.Context, d Dest, folder string, m message) error {
	r.done++
	defer r.report()
	res, err := d.Store.Deliver(ctx, m.content, m.date, []mailstore.Target{{
		AccountID: d.Account.ID, Mailbox: folder, Flags: m.flags, Origin: &m.origin,
	}})
	if err == nil {
		err = res[0].Err
	}
	switch {
	case err == nil:
		r.sum.Messages++
		r.sum.Bytes += int64(len(m.content))
		return nil
	case errors.Is(err, mailstore.ErrImported):
		r.sum.Skipped++
		return nil
	case errors.Is(err, mailstore.ErrOverQuota):
		return fmt.Errorf("%s is over quota: %w", d.Account.Address, err)
	case ctx.Err() != nil, errors.Is(err, mailstore.ErrFull), errors.Is(err, mailstore.ErrClosed),
		errors.Is(err, mailstore.ErrNotFound):
		return fmt.Errorf("storing into %s: %w", folder, err)
	}
	r.sum.Errors++
	r.opt.log().Warn("message not imported", "account", d.Account.Address, "folder", folder,
		"source", m.origin.Source, "item", m.origin.Item, "err", err)
	return nil
}

// failed counts a message that could not be read.
func (r *run) failed(account, source, item string, err error) {
	r.done++
	r.sum.Errors++
	r.opt.log().Warn("message not read", "account", account,
		"source", source, "item", item, "err", err)
	r.report()
}

// crlf returns b with every bare LF made CRLF, as IMAP wants messages; files
// on disk (maildir, mbox) usually end lines with LF alone.
func crlf(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// lf returns b with CRLF line endings made LF, as maildir and mbox files have them.
func lf(b []byte) []byte {
	return []byte(strings.ReplaceAll(string(b), "\r\n", "\n"))
}

// specialName returns the sealmail folder with the special-use attribute use
// (\Sent, \Trash, ...): a source folder so marked is imported into it, whatever
// the old server called it ("Sent Items", "Elementos enviados").
func specialName(ctx context.Context, d Dest, use string) (string, bool) {
	mb, err := d.Store.SpecialMailbox(ctx, d.Account.ID, use)
	if err != nil {
		return "", false
	}
	return mb.Name, true
}

// createFolder makes sure folder exists in d, also when it is to stay empty.
func createFolder(ctx context.Context, d Dest, folder string) error {
	if folder == mailstore.Inbox {
		return nil
	}
	_, err := d.Store.CreateMailbox(ctx, d.Account.ID, folder, "")
	if err != nil && !errors.Is(err, mailstore.ErrExists) {
		return fmt.Errorf("creating folder %q: %w", folder, err)
	}
	return nil
}
