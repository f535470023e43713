package imapd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
	"sealmail/throttle"
)

// session is one client connection. imapserver calls it from one goroutine at a
// time; during IDLE, Poll runs on a goroutine of its own while the connection
// goroutine only waits for DONE.
type session struct {
	srv  *Server
	conn *imapserver.Conn
	ip   netip.Addr
	slot *throttle.Conn     // counts this connection against the limits
	acct *mailstore.Account // nil until login
	sel  *selected          // nil unless a mailbox is selected
	// endWatch stops watching for the account's password to change
	// (nil until login).
	endWatch func()
}

var _ imapserver.SessionIMAP4rev2 = (*session)(nil)
var _ imapserver.SessionAppendLimit = (*session)(nil)
var _ imapserver.SessionID = (*session)(nil)
var _ imapserver.SessionQuota = (*session)(nil)
var _ imapserver.SessionUnauthenticate = (*session)(nil)
var _ imapserver.SessionSort = (*session)(nil)
var _ imapserver.SessionIdleNotify = (*session)(nil)

// ctx is for store calls. It is not cancelled at Shutdown: a command in flight
// runs to completion, so no client is told NO about a write that committed.
func (s *session) ctx() context.Context { return context.Background() }

// cmdCtx is for work done only to answer the client (listing, searching,
// reading messages): it ends when the client hangs up during the command or
// the server shuts down, so that work stops when nobody waits for it.
func (s *session) cmdCtx() context.Context { return s.conn.Context() }

func (s *session) Close() error {
	s.logout()
	s.unselect()
	s.slot.Close()
	s.srv.sessions.Done()
	return nil
}

func (s *session) Login(username, password string) error {
	// The throttle answers before the password is checked: guesses beyond
	// the account's allowance cost no argon2id, wherever they come from.
	try, err := s.srv.logins.Begin(mailstore.LoginName(username), s.ip)
	if err != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: err.Error()}
	}
	acct, err := s.srv.Store.Authenticate(s.ctx(), username, password)
	switch {
	case errors.Is(err, mailstore.ErrAuthFailed):
		try.Fail()
		s.srv.log.Info("imap login failed", "ip", s.ip, "user", username)
		return imapserver.ErrAuthFailed
	case errors.Is(err, mailstore.ErrDisabled):
		try.Cancel()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeContactAdmin, Text: "Account disabled"}
	case err != nil:
		try.Cancel()
		return s.fail("login", err)
	}
	try.Succeed()
	if err := s.slot.Login(acct.Address); err != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: err.Error()}
	}
	s.acct = &acct
	s.endWatch = s.srv.Store.WatchLogout(acct, func() {
		// Whoever knew the old password is out: in the middle of a
		// command or IDLE too.
		s.srv.log.Info("imap session ended: the password changed", "ip", s.ip, "user", acct.Address)
		s.conn.Bye("The password of this account was changed: log in again with the new one")
	})
	return nil
}

// logout stops watching the account's password.
func (s *session) logout() {
	if s.endWatch != nil {
		s.endWatch()
		s.endWatch = nil
	}
}

// Unauthenticate (RFC 8437) ends the login but not the connection: the
// client may log in again, as someone else.
func (s *session) Unauthenticate() error {
	s.logout()
	s.unselect()
	s.acct = nil
	s.slot.Logout() // counts against its address again, no longer its account
	return nil
}

func (s *session) AppendLimit() uint32 {
	n := s.srv.MaxMessageSize
	if n <= 0 {
		n = defaultMaxMessageSize
	}
	return uint32(min(n, 1<<32-1))
}

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// ID names the server and nothing more: versions would only help attackers.
func (s *session) ID(client *imap.IDData) *imap.IDData {
	s.srv.log.Debug("imap client id", "ip", s.ip, "user", s.user(), "name", client.Name,
		"version", client.Version, "os", client.OS, "vendor", client.Vendor)
	return &imap.IDData{Name: "sealmail"}
}

// delim is mailstore.Separator as a rune.
const delim = '/'

var errShutdown = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Server shutting down"}

// fail turns a store error into the status response a client can act on. Errors
// the client did not cause are logged and answered with SERVERBUG.
func (s *session) fail(op string, err error) error {
	code, text := imap.ResponseCode(""), ""
	switch {
	case errors.Is(err, mailstore.ErrNotFound):
		code, text = imap.ResponseCodeNonExistent, "No such mailbox"
	case errors.Is(err, mailstore.ErrExists):
		code, text = imap.ResponseCodeAlreadyExists, "Mailbox already exists"
	case errors.Is(err, mailstore.ErrOverQuota):
		code, text = imap.ResponseCodeOverQuota, "Quota exceeded"
	case errors.Is(err, mailstore.ErrMailboxInUse):
		code, text = imap.ResponseCodeInUse, "Mailbox cannot be removed"
	case errors.Is(err, mailstore.ErrInvalid):
		code, text = imap.ResponseCodeCannot, strings.TrimPrefix(err.Error(), "mailstore: ")
	case errors.Is(err, mailstore.ErrFull):
		// The store logged it; the client should try again later.
		code, text = imap.ResponseCodeUnavailable, "Server storage is full, try again later"
	case errors.Is(err, mailstore.ErrClosed), errors.Is(err, context.Canceled):
		return errShutdown
	default:
		s.srv.log.Error("imap "+op, "err", err, "ip", s.ip, "user", s.user())
		code, text = imap.ResponseCodeServerBug, "Internal error, try again later"
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

func (s *session) user() string {
	if s.acct == nil {
		return ""
	}
	return s.acct.Address
}

func (s *session) mailbox(name string) (mailstore.Mailbox, error) {
	mb, err := s.srv.Store.Mailbox(s.ctx(), s.acct.ID, mailstore.CanonicalName(name))
	if err != nil {
		return mb, s.fail("mailbox", err)
	}
	return mb, nil
}

var specialUses = map[imap.MailboxAttr]bool{
	imap.MailboxAttrSent: true, imap.MailboxAttrDrafts: true, imap.MailboxAttrTrash: true,
	imap.MailboxAttrJunk: true, imap.MailboxAttrArchive: true,
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	name = mailstore.CanonicalName(name)
	if name == mailstore.Inbox {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX always exists"}
	}
	var use string
	switch len(options.SpecialUse) {
	case 0:
	case 1:
		if !specialUses[options.SpecialUse[0]] {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Unsupported special-use attribute"}
		}
		use = string(options.SpecialUse[0])
	default:
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "A mailbox takes one special-use attribute"}
	}
	if _, err := s.srv.Store.CreateMailboxUnsubscribed(s.ctx(), s.acct.ID, name, use); err != nil {
		return s.fail("create", err)
	}
	return nil
}

func (s *session) Delete(name string) error {
	name = mailstore.CanonicalName(name)
	if name == mailstore.Inbox {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	if err := s.srv.Store.DeleteMailbox(s.ctx(), s.acct.ID, name); err != nil {
		return s.fail("delete", err)
	}
	return nil
}

func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	oldName, newName = mailstore.CanonicalName(oldName), mailstore.CanonicalName(newName)
	if newName == mailstore.Inbox {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "INBOX always exists"}
	}
	if err := s.srv.Store.RenameMailbox(s.ctx(), s.acct.ID, oldName, newName); err != nil {
		return s.fail("rename", err)
	}
	return nil
}

func (s *session) Subscribe(name string) error   { return s.subscribe(name, true) }
func (s *session) Unsubscribe(name string) error { return s.subscribe(name, false) }

func (s *session) subscribe(name string, on bool) error {
	if err := s.srv.Store.SetSubscribed(s.ctx(), s.acct.ID, mailstore.CanonicalName(name), on); err != nil {
		return s.fail("subscribe", err)
	}
	return nil
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	mb, err := s.mailbox(name)
	if err != nil {
		return nil, err
	}
	return s.status(mb, options)
}

func (s *session) status(mb mailstore.Mailbox, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: mb.Name, UIDNext: imap.UID(mb.UIDNext), UIDValidity: mb.UIDValidity}
	if options.NumMessages || options.NumUnseen || options.NumDeleted || options.Size {
		st, err := s.srv.Store.MailboxStatus(s.ctx(), mb.ID)
		if err != nil {
			return nil, s.fail("status", err)
		}
		data.NumMessages, data.NumUnseen, data.NumDeleted, data.Size = &st.Messages, &st.Unseen, &st.Deleted, &st.Size
	}
	if options.DeletedStorage {
		// In octets, unlike the STORAGE resource: RFC 9208 allows the sum of
		// the RFC822.SIZEs of the \Deleted messages here.
		n, err := s.srv.Store.DeletedSize(s.ctx(), mb.ID)
		if err != nil {
			return nil, s.fail("status", err)
		}
		data.DeletedStorage = &n
	}
	if options.NumRecent {
		n, err := s.srv.Store.UnclaimedRecent(s.ctx(), mb.ID)
		if err != nil {
			return nil, s.fail("status", err)
		}
		if s.sel != nil && s.sel.mb.ID == mb.ID {
			n += s.sel.numRecent() // RFC 3501: what this session sees as recent
		}
		data.NumRecent = &n
	}
	if options.HighestModSeq {
		data.HighestModSeq = uint64(mb.ModSeq)
	}
	if options.AppendLimit {
		n := s.AppendLimit()
		data.AppendLimit = &n
	}
	return data, nil
}

func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	// The store creates a missing target mailbox, which is right for delivery
	// but not for APPEND: the client must be told to CREATE it.
	mb, err := s.srv.Store.Mailbox(s.ctx(), s.acct.ID, mailstore.CanonicalName(name))
	if errors.Is(err, mailstore.ErrNotFound) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
	} else if err != nil {
		return nil, s.fail("append", err)
	}
	buf := make([]byte, r.Size())
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading APPEND literal: %w", err)
	}
	if len(buf) == 0 {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Empty message"}
	}
	d, err := s.srv.Store.Append(s.ctx(), s.acct.ID, mb.Name, buf, storeFlags(options.Flags), options.Time)
	if err != nil {
		return nil, s.fail("append", err)
	}
	return &imap.AppendData{UIDValidity: d.UIDValidity, UID: imap.UID(d.UID)}, nil
}

// storeFlags converts flags for the store, dropping \Recent, which only the
// server sets.
func storeFlags(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if !strings.EqualFold(string(f), `\Recent`) {
			out = append(out, string(f))
		}
	}
	return out
}

func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

// logPanic is deferred around work on stored messages: a message the store
// accepted but go-message chokes on must cost the client one NO, not the
// connection.
func (s *session) logPanic(op string, err *error) {
	if v := recover(); v != nil {
		s.srv.log.Error("imap panic", "op", op, "panic", v, "ip", s.ip, "user", s.user(), slog.String("mailbox", s.selName()))
		*err = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error on a stored message"}
	}
}

func (s *session) selName() string {
	if s.sel == nil {
		return ""
	}
	return s.sel.mb.Name
}
