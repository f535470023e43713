package smtpd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/throttle"
)

// session is one client connection. go-smtp calls its methods from the
// connection's goroutine, except Data for BDAT, which runs on its own while
// RSET or a hang-up may call Reset: mu covers that.
type session struct {
	srv  *Server
	role role
	conn *smtp.Conn
	ip   net.IP
	own  *conn          // nil if the connection did not come through listener
	slot *throttle.Conn // own's, nil with it

	mu   sync.Mutex
	acct *mailstore.Account // after AUTH (submission only)
	tx   *transaction
	// endWatch stops watching for the account's password to change.
	endWatch func()
}

// transaction is one MAIL FROM ... DATA exchange.
type transaction struct {
	id       string
	start    time.Time
	from     string
	opts     smtp.MailOptions
	rcpts    []string // as accepted, for the log
	refused  int
	accounts []mailstore.Account
	local    []string // local recipients as given, for the document registry
	check    string   // the inbound checker's verdict, for the log
	seen     map[int64]bool
	remote   []string
	rseen    map[string]bool
	held     int64  // bytes of Server.inflight taken for the declared SIZE
	spool    *spool // the message, from DATA on
}

func (s *Server) newSession(c *smtp.Conn, r role) *session {
	ss := &session{srv: s, role: r, conn: c, ip: remoteIP(c.Conn()), own: connOf(c.Conn())}
	if ss.own != nil {
		ss.slot = ss.own.slot
	}
	return ss
}

// connOf finds our connection under nc, under implicit TLS too.
func connOf(nc net.Conn) *conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// Errors the client sees. Their text is for a person reading a bounce.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required: log in (AUTH) before sending"}
	errNestedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "Nested MAIL command: finish or RSET the current message first"}
	errNeedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "Need MAIL command first"}
	errNoAuthHere = &smtp.SMTPError{Code: 502, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "AUTH is not available on this port: staff submit mail on port 587 or 465"}
	errNoRelayYet = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Relaying to other domains is not available yet, try again later"}
	errTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary local error, try again later"}
	errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "No such user here"}
	errDisabled = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 2, 1},
		Message: "Mailbox disabled, not accepting messages"}
	errMailboxFull = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2},
		Message: "Mailbox full: the recipient is over quota"}
	errBadAddress = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
		Message: "Bad recipient address syntax"}
	errReadFailed = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
		Message: "Error reading the message, try again"}
	errLineTooLong = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Line too long: over 1 MiB without a line break"}
	errStorageFull = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
		Message: "Insufficient system storage: the server's disk is full, try again later"}
	errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message: "Server shutting down, try again later"}
	errPasswordChanged = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "The password of this account was changed: log in again with the new one"}
)

// needUTF8 refuses a non-ASCII address in a transaction that did not ask
// for SMTPUTF8: RFC 6531 3.4 wants 553 with the enhanced code 5.6.7 of RFC
// 6533 ("non-ASCII addresses not permitted"), not a silent acceptance.
func needUTF8(addr string) error {
	if strings.IndexFunc(addr, func(r rune) bool { return r >= utf8.RuneSelf }) < 0 {
		return nil
	}
	return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
		Message: fmt.Sprintf("The address <%s> is not ASCII: give MAIL FROM the SMTPUTF8 parameter (RFC 6531)", addr)}
}

func policyError(format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: fmt.Sprintf(format, args...)}
}

// Auth: submission offers PLAIN and LOGIN, which go-smtp advertises and
// accepts only over TLS (AllowInsecureAuth stays false there).
func (ss *session) AuthMechanisms() []string {
	if ss.role != roleSubmission {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.role != roleSubmission {
		return nil, errNoAuthHere
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
					Message: "Authentication failed: acting as another user is not allowed"}
			}
			return ss.login(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{check: ss.login}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) login(username, password string) error {
	// The throttle answers before the password is checked: guesses beyond
	// the account's allowance cost no argon2id, wherever they come from.
	addr, _ := netip.AddrFromSlice(ss.ip)
	try, err := ss.srv.logins.Begin(mailstore.LoginName(username), addr.Unmap())
	if err != nil {
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: err.Error()}
	}
	acct, err := ss.srv.Store.Authenticate(context.Background(), username, password)
	switch {
	case errors.Is(err, mailstore.ErrAuthFailed):
		try.Fail()
		ss.srv.log.Warn("smtp auth failed", "ip", ss.ip.String(), "user", username)
		return smtp.ErrAuthFailed
	case errors.Is(err, mailstore.ErrDisabled):
		try.Cancel()
		ss.srv.log.Warn("smtp auth refused", "ip", ss.ip.String(), "user", username, "reason", "account disabled")
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed: account disabled"}
	case err != nil:
		try.Cancel()
		ss.srv.log.Error("smtp auth", "ip", ss.ip.String(), "user", username, "err", err)
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	}
	try.Succeed()
	if ss.slot != nil {
		if err := ss.slot.Login(acct.Address); err != nil {
			// 454, not 421: the client may stay connected and retry AUTH later.
			return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: err.Error()}
		}
	}
	ss.mu.Lock()
	ss.acct = &acct
	if ss.own != nil {
		ss.endWatch = ss.srv.Store.WatchLogout(acct, func() {
			ss.srv.log.Info("smtp session ended: the password changed", "ip", ss.ip.String(), "user", acct.Address)
			ss.own.end(errPasswordChanged)
		})
	}
	ss.mu.Unlock()
	return nil
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.tx != nil {
		return errNestedMail
	}
	tx := &transaction{id: newID(), start: time.Now(), from: from, seen: map[int64]bool{}, rseen: map[string]bool{}}
	if opts != nil {
		tx.opts = *opts
	}
	var err error
	if !tx.opts.UTF8 {
		err = needUTF8(from)
	}
	if err == nil {
		err = ss.checkSender(from)
	}
	if err == nil && tx.opts.Size > 0 {
		// Room for the declared size is taken now, so a message that began
		// is not refused at its end for want of it.
		if ss.srv.inflight.take(tx.opts.Size) {
			tx.held = tx.opts.Size
		} else {
			err = errBusySize
		}
	}
	if err != nil {
		ss.tx = tx
		ss.finish(err, 0)
		return err
	}
	ss.tx = tx
	return nil
}

// checkSender applies submission's rule: log in first, then send only as
// yourself or as a list you belong to. The MX port takes any sender; SPF and
// DMARC (Inbound) judge it.
func (ss *session) checkSender(from string) error {
	if ss.role != roleSubmission {
		return nil
	}
	if ss.acct == nil {
		return errAuthRequired
	}
	if from == "" {
		return policyError("The null sender <> is for server notices; send as %s or a list you belong to", ss.acct.Address)
	}
	owns, err := ss.srv.Store.Owns(context.Background(), *ss.acct, from)
	if err != nil {
		ss.srv.log.Error("smtp owns", "user", ss.acct.Address, "from", from, "err", err)
		return errTemporary
	}
	if !owns {
		return policyError("Sender <%s> is not an address of account %s: you may send only as your own address or a list you belong to", from, ss.acct.Address)
	}
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tx := ss.tx
	if tx == nil {
		return errNeedMail // go-smtp checks this first; kept so a change there cannot open a hole
	}
	var err error
	if !tx.opts.UTF8 {
		err = needUTF8(to)
	}
	if err == nil {
		err = ss.addRcpt(tx, to)
	}
	if err != nil {
		tx.refused++
		ss.srv.log.Debug("smtp rcpt refused", "id", tx.id, "ip", ss.ip.String(), "rcpt", to, "err", err)
		return err
	}
	tx.rcpts = append(tx.rcpts, to)
	return nil
}

func (ss *session) addRcpt(tx *transaction, to string) error {
	ctx := context.Background()
	_, domain, err := mailstore.SplitAddress(strings.ToLower(to))
	if err != nil {
		return errBadAddress
	}
	local, err := ss.srv.Store.IsLocalDomain(ctx, domain)
	if err != nil {
		ss.srv.log.Error("smtp rcpt", "rcpt", to, "err", err)
		return errTemporary
	}
	if !local {
		if ss.role == roleMX {
			// Whatever the client claims or says: the MX port takes mail for
			// the hosted domains only. Anything else would be an open relay.
			return policyError("Relaying denied: this server accepts mail only for the domains it hosts, not %s", domain)
		}
		if ss.srv.Queue == nil {
			return errNoRelayYet
		}
		tx.addRemote(to)
		return nil
	}
	accts, remote, err := ss.srv.Store.Resolve(ctx, to)
	if errors.Is(err, mailstore.ErrNotFound) {
		return errNoSuchUser
	}
	if err != nil {
		ss.srv.log.Error("smtp rcpt", "rcpt", to, "err", err)
		return errTemporary
	}
	if len(remote) > 0 && ss.srv.Queue == nil {
		return errNoRelayYet
	}
	if len(accts) == 1 && len(remote) == 0 && strings.EqualFold(accts[0].Address, to) {
		// The recipient's own mailbox: say now if it cannot take the message.
		// (A list's disabled or full member does not refuse the whole list.)
		a := accts[0]
		if a.Disabled {
			return errDisabled
		}
		if a.Quota > 0 && (a.Used >= a.Quota || a.Used+tx.opts.Size > a.Quota) {
			return errMailboxFull
		}
	}
	enabled := 0
	for _, a := range accts {
		if a.Disabled {
			continue // a disabled account receives no mail
		}
		enabled++
		if !tx.seen[a.ID] {
			tx.seen[a.ID] = true
			tx.accounts = append(tx.accounts, a)
		}
	}
	if enabled == 0 && len(remote) == 0 {
		return errDisabled
	}
	tx.local = append(tx.local, to)
	for _, r := range remote {
		tx.addRemote(r)
	}
	return nil
}

func (tx *transaction) addRemote(addr string) {
	key := strings.ToLower(addr)
	if !tx.rseen[key] {
		tx.rseen[key] = true
		tx.remote = append(tx.remote, addr)
	}
}

func (ss *session) Data(r io.Reader) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tx := ss.tx
	if tx == nil {
		return errNeedMail
	}
	sp := ss.srv.newSpool(tx.held)
	tx.held, tx.spool = 0, sp
	if err := ss.readError(sp.readFrom(r)); err != nil {
		ss.finish(err, sp.size)
		return err
	}
	err := ss.deliver(tx, sp)
	ss.finish(err, sp.size)
	return err
}

// readError says why reading a message failed. go-smtp already stops DATA at
// MaxMessageBytes and refuses BDAT chunks beyond it; spool.readFrom keeps that
// true whatever path the bytes took.
func (ss *session) readError(err error) error {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, smtp.ErrDataTooLarge):
		return smtp.ErrDataTooLarge
	case errors.Is(err, smtp.ErrDataReset), errors.As(err, &se):
		return err
	case errors.Is(err, smtp.ErrTooLongLine):
		// go-smtp hangs up after this; the message would fail the same way again.
		return errLineTooLong
	case ss.srv.closed.Load():
		return errShuttingDown
	}
	return errReadFailed
}

// deliver adds the trace and checks, and stores the message once for every
// local recipient and the queue for the remote ones, in one store operation.
// It returns nil only when all of that is durable.
func (ss *session) deliver(tx *transaction, sp *spool) error {
	ctx, cancel := context.WithTimeout(context.Background(), ss.srv.commandTimeout())
	defer cancel()
	m, err := sp.message()
	if err != nil {
		return err
	}

	var prefix strings.Builder
	junk := false
	if ss.role == roleMX && ss.srv.Inbound != nil {
		header, v, reason := ss.srv.Inbound.Check(ctx, ss.ip, ss.conn.Hostname(), tx.from, m.reader())
		tx.check = v.String()
		if reason != "" {
			tx.check += ": " + reason
		}
		switch v {
		case mailauth.Reject:
			if reason == "" {
				reason = "Message refused by the domain's sending policy"
			}
			return policyError("%s", reason)
		case mailauth.Quarantine:
			junk = true
		}
		if header != "" {
			prefix.WriteString(strings.TrimRight(header, "\r\n") + "\r\n")
		}
	}
	// After the check, which must see the message as its signer sent it.
	m.at = stripAuthResults(m.buf, m.at, ss.srv.host)
	prefix.WriteString(ss.received(tx))
	if ss.role == roleSubmission {
		add, err := ss.checkHeader(m.header())
		if err != nil {
			return err
		}
		prefix.WriteString(add)
	}
	m.prepend(prefix.String())

	// Registry.Outgoing numbers and seals a clerk's official document, and
	// passes anyone else's mail: only a clerk's is read into memory.
	if ss.role == roleSubmission && ss.srv.Registry != nil && ss.acct.Role == mailstore.RoleClerk {
		msg, err := m.load(ctx)
		if err != nil {
			return err
		}
		// An official document is numbered and sealed before anyone gets it;
		// the registry delivers and queues it with its register entry.
		sealed, err := ss.srv.Registry.Outgoing(ctx, *ss.acct, tx.from, tx.local, tx.remote, msg)
		if errors.Is(err, registry.ErrRejected) {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: err.Error()}
		}
		if err != nil {
			ss.srv.log.Error("smtp registry", "id", tx.id, "err", err)
			return errTemporary
		}
		if sealed != nil {
			return nil
		}
	}
	targets, done, err := ss.localTargets(ctx, tx, m, junk)
	if err != nil || done || len(targets) == 0 && len(tx.remote) == 0 {
		return err
	}
	a, err := ss.srv.Store.Accept(ctx, mailstore.Delivery{
		Content: m.content(), Date: time.Now(), Targets: targets,
		// One 250 answers for all recipients: a mailbox the message overfills
		// takes it when others do (quota is enforced at RCPT, with SIZE, and
		// whenever the message fits no one).
		Overfill: true,
		From:     tx.from, Remote: tx.remote,
	})
	if err != nil {
		ss.srv.log.Error("smtp deliver", "id", tx.id, "err", err)
		return storeError(err)
	}
	if a.QueueID != 0 {
		ss.srv.Queue.Wake()
	}
	stored, full, over := 0, 0, 0
	var inboxes []mailstore.Account
	for i, d := range a.Delivered {
		switch {
		case d.Err == nil:
			stored++
			if !junk {
				inboxes = append(inboxes, tx.accounts[i])
			}
			if d.Overfilled {
				over++
			}
		case errors.Is(d.Err, mailstore.ErrOverQuota):
			full++
		default:
			// The account went away since RCPT: there is nobody to deliver to.
			ss.srv.log.Warn("smtp deliver", "id", tx.id, "account", tx.accounts[i].Address, "err", d.Err)
		}
	}
	if over > 0 {
		ss.srv.log.Warn("smtp delivered over quota", "id", tx.id, "mailboxes", over)
	}
	if len(inboxes) > 0 && ss.srv.Delivered != nil {
		ss.srv.Delivered(ctx, tx.from, m.header(), inboxes)
	}
	switch {
	case stored > 0 || a.QueueID != 0:
		return nil
	case full > 0:
		return errMailboxFull
	}
	return errNoSuchUser
}

// storeError is the answer to a store that failed: a full disk is the
// "insufficient system storage" of RFC 3463, anything else a local error.
func storeError(err error) error {
	if errors.Is(err, mailstore.ErrFull) {
		return errStorageFull
	}
	return errTemporary
}

// localTargets returns the mailboxes the message goes to. An official
// document or receipt is the registry's to verify and file (its own
// verification decides where it goes, failures to quarantine), and it
// queues the copy for remote recipients in the same commit: then done is
// true and nothing is left to store here.
func (ss *session) localTargets(ctx context.Context, tx *transaction, m *message, junk bool) (targets []mailstore.Target, done bool, err error) {
	if len(tx.accounts) == 0 {
		return nil, false, nil
	}
	if ss.srv.Registry != nil && registry.Concerns(m.header()) {
		msg, err := m.load(ctx)
		if err != nil {
			return nil, false, err
		}
		inbox := make([]mailstore.Target, len(tx.accounts))
		for i, a := range tx.accounts {
			inbox[i] = mailstore.Target{AccountID: a.ID}
		}
		handled, err := ss.srv.Registry.Incoming(ctx, tx.from, tx.local, inbox, tx.remote, msg)
		if err != nil {
			ss.srv.log.Error("smtp registry", "id", tx.id, "err", err)
			return nil, false, storeError(err)
		}
		if handled {
			return nil, true, nil
		}
	}
	targets = make([]mailstore.Target, len(tx.accounts))
	for i, a := range tx.accounts {
		targets[i] = mailstore.Target{AccountID: a.ID}
		if junk {
			targets[i].Mailbox = ss.junkName(ctx, a)
		}
	}
	return targets, false, nil
}

// junkName finds the account's \Junk mailbox, whatever the user renamed it to.
func (ss *session) junkName(ctx context.Context, a mailstore.Account) string {
	mb, err := ss.srv.Store.SpecialMailbox(ctx, a.ID, `\Junk`)
	if err != nil {
		return "Junk" // Deliver creates it
	}
	return mb.Name
}

func (ss *session) Reset() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.tx != nil {
		ss.finish(errAborted, 0)
	}
}

func (ss *session) Logout() error {
	ss.Reset()
	ss.mu.Lock()
	if ss.endWatch != nil {
		ss.endWatch()
		ss.endWatch = nil
	}
	ss.mu.Unlock()
	return nil
}

var errAborted = errors.New("aborted by the client")

// finish logs the transaction, once, and ends it. mu is held.
func (ss *session) finish(err error, size int64) {
	tx := ss.tx
	ss.tx = nil
	if tx.spool != nil {
		tx.spool.release()
	}
	ss.srv.inflight.give(tx.held)
	user := ""
	if ss.acct != nil {
		user = ss.acct.Address
	}
	result := "250 2.0.0 stored"
	level := slog.LevelInfo
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		result = fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
		level = slog.LevelWarn
	case err != nil:
		result = err.Error()
		level = slog.LevelWarn
	}
	ss.srv.log.Log(context.Background(), level, "smtp transaction",
		"id", tx.id, "port", ss.role.String(), "ip", ss.ip.String(), "helo", ss.conn.Hostname(), "user", user,
		"from", tx.from, "rcpts", tx.rcpts, "refused", tx.refused, "local", len(tx.accounts), "remote", len(tx.remote),
		"size", size, "check", tx.check, "result", result, "duration", time.Since(tx.start))
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
