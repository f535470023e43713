package migrate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/mailstore"
)

// IMAPSource is an account on a running IMAP server.
type IMAPSource struct {
	// URL is imaps://HOST[:PORT] (TLS from the start, port 993 by default) or
	// imap://HOST[:PORT] (STARTTLS, required; port 143 by default).
	URL      string
	User     string
	Password string
	// TLS is the client configuration; nil verifies the server against the
	// system's roots. Its ServerName defaults to the URL's host.
	TLS *tls.Config
}

// batch bounds one UID FETCH of message content: by count, and by the sizes
// the server announced, so a folder of large attachments is not all in memory.
const (
	batchMessages = 100
	batchBytes    = 32 << 20
)

// IMAP copies every folder of src into d.
func IMAP(ctx context.Context, src IMAPSource, d Dest, opt Options) (Summary, error) {
	r := &run{opt: opt}
	c, base, err := dialIMAP(src)
	if err != nil {
		return r.sum, err
	}
	defer c.Close()
	// The client takes no context: closing the connection ends whatever
	// command is waiting.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err = r.imap(ctx, c, base, d)
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil {
		c.Logout().Wait()
	}
	return r.sum, err
}

func dialIMAP(src IMAPSource) (*imapclient.Client, string, error) {
	u, err := url.Parse(src.URL)
	if err != nil {
		return nil, "", fmt.Errorf("source %q: %w", src.URL, err)
	}
	port := u.Port()
	switch u.Scheme {
	case "imaps":
		if port == "" {
			port = "993"
		}
	case "imap":
		if port == "" {
			port = "143"
		}
	default:
		return nil, "", fmt.Errorf("source %q: the scheme must be imaps:// (TLS) or imap:// (STARTTLS)", src.URL)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
		return nil, "", fmt.Errorf("source %q: want imaps://HOST[:PORT]", src.URL)
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	cfg := &tls.Config{}
	if src.TLS != nil {
		cfg = src.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	opts := &imapclient.Options{TLSConfig: cfg, Dialer: &net.Dialer{Timeout: 30 * time.Second}}
	var c *imapclient.Client
	if u.Scheme == "imaps" {
		c, err = imapclient.DialTLS(addr, opts)
	} else {
		c, err = imapclient.DialStartTLS(addr, opts)
	}
	if err != nil {
		return nil, "", fmt.Errorf("connecting to %s: %w", addr, err)
	}
	if err := c.Login(src.User, src.Password).Wait(); err != nil {
		c.Close()
		return nil, "", fmt.Errorf("logging in to %s as %s: %w", addr, src.User, err)
	}
	// The source of an origin names the account and server, not how they
	// were reached, so that imap:// and imaps:// runs are one migration.
	base := "imap://" + url.PathEscape(src.User) + "@" + strings.ToLower(u.Hostname())
	return c, base, nil
}

// folder is a mailbox on the source server.
type folder struct {
	name    string // as the server names it, UTF-8
	target  string // the sealmail folder it goes to
	select_ bool   // false for \Noselect names that only hold the hierarchy
}

func (r *run) imap(ctx context.Context, c *imapclient.Client, base string, d Dest) error {
	if c.Caps().Has(imap.CapUTF8Accept) {
		// Names in UTF-8 rather than modified UTF-7; the client decodes both.
		if _, err := c.Enable(imap.CapUTF8Accept).Wait(); err != nil {
			return fmt.Errorf("ENABLE UTF8=ACCEPT: %w", err)
		}
	}
	folders, err := listFolders(ctx, c, d)
	if err != nil {
		return err
	}
	// The total is what the server holds; what is there from an earlier run
	// is counted as done when met.
	for _, f := range folders {
		if !f.select_ {
			continue
		}
		st, err := c.Status(f.name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return fmt.Errorf("STATUS %q: %w", f.name, err)
		}
		r.total += int(*st.NumMessages)
	}
	for _, f := range folders {
		if err := r.imapFolder(ctx, c, base, d, f); err != nil {
			return err
		}
	}
	return nil
}

// listFolders lists the personal folders of the source and where each goes.
func listFolders(ctx context.Context, c *imapclient.Client, d Dest) ([]folder, error) {
	var personal string
	var others []string
	if c.Caps().Has(imap.CapNamespace) {
		ns, err := c.Namespace().Wait()
		if err != nil {
			return nil, fmt.Errorf("NAMESPACE: %w", err)
		}
		if len(ns.Personal) > 0 {
			personal = ns.Personal[0].Prefix
		}
		for _, n := range append(ns.Other, ns.Shared...) {
			others = append(others, n.Prefix)
		}
	}
	var opts *imap.ListOptions
	if c.Caps().Has(imap.CapSpecialUse) {
		opts = &imap.ListOptions{ReturnSpecialUse: true}
	}
	list, err := c.List("", "*", opts).Collect()
	if err != nil {
		return nil, fmt.Errorf("LIST: %w", err)
	}
	var out []folder
	seen := map[string]bool{}
	for _, l := range list {
		if slices.ContainsFunc(others, func(p string) bool { return p != "" && strings.HasPrefix(l.Mailbox, p) }) {
			continue // other users' and shared folders are not this account's mail
		}
		if skipVirtual(l.Attrs) {
			continue
		}
		f := folder{name: l.Mailbox, select_: !hasAttr(l.Attrs, imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent)}
		f.target = targetName(l.Mailbox, personal, l.Delim)
		for _, a := range l.Attrs {
			if use := specialUse(a); use != "" {
				if name, ok := specialName(ctx, d, use); ok {
					f.target = name
				}
			}
		}
		if seen[f.name] {
			continue
		}
		seen[f.name] = true
		out = append(out, f)
	}
	// INBOX first, then the tree in order, so parents come before children.
	slices.SortFunc(out, func(a, b folder) int {
		if (a.target == mailstore.Inbox) != (b.target == mailstore.Inbox) {
			if a.target == mailstore.Inbox {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out, nil
}

// skipVirtual reports whether a folder only shows messages kept in other
// folders (Gmail's All Mail, virtual Flagged or Important folders): copying it
// would copy them twice.
func skipVirtual(attrs []imap.MailboxAttr) bool {
	return hasAttr(attrs, imap.MailboxAttrAll, imap.MailboxAttrFlagged, imap.MailboxAttrImportant)
}

func hasAttr(attrs []imap.MailboxAttr, want ...imap.MailboxAttr) bool {
	for _, a := range attrs {
		for _, w := range want {
			if strings.EqualFold(string(a), string(w)) {
				return true
			}
		}
	}
	return false
}

func specialUse(a imap.MailboxAttr) string {
	for _, u := range []imap.MailboxAttr{imap.MailboxAttrSent, imap.MailboxAttrDrafts, imap.MailboxAttrTrash,
		imap.MailboxAttrJunk, imap.MailboxAttrArchive} {
		if strings.EqualFold(string(a), string(u)) {
			return string(u)
		}
	}
	return ""
}

// targetName maps a source folder name to a sealmail one: the personal
// namespace prefix (Courier's and Cyrus's "INBOX.") goes, and the server's
// hierarchy delimiter becomes sealmail's "/".
func targetName(name, prefix string, delim rune) string {
	if strings.EqualFold(name, mailstore.Inbox) {
		return mailstore.Inbox
	}
	if prefix != "" && len(name) > len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
		name = name[len(prefix):]
	}
	if delim != 0 && string(delim) != mailstore.Separator {
		parts := strings.Split(name, string(delim))
		for i, p := range parts {
			// A "/" inside a name would make a level of its own here.
			parts[i] = strings.ReplaceAll(p, mailstore.Separator, "-")
		}
		name = strings.Join(parts, mailstore.Separator)
	}
	return mailstore.CanonicalName(name)
}

// imapItem names a message on an IMAP server: its UID is only meaningful with
// the folder's UIDVALIDITY.
func imapItem(validity uint32, uid imap.UID) string {
	return strconv.FormatUint(uint64(validity), 10) + "." + strconv.FormatUint(uint64(uid), 10)
}

// ident is the identity of a message that does not depend on where it is
// stored: it finds the messages copied before when the server has renumbered a
// folder (a new UIDVALIDITY). Without a Message-ID there is none.
func ident(messageID string, size int64, date time.Time) string {
	if messageID == "" {
		return ""
	}
	return messageID + " " + strconv.FormatInt(size, 10) + " " + strconv.FormatInt(date.Unix(), 10)
}

// pending is a message of the source folder not copied yet.
type pending struct {
	uid   imap.UID
	size  int64
	ident string
}

func (r *run) imapFolder(ctx context.Context, c *imapclient.Client, base string, d Dest, f folder) error {
	r.folder(f.target)
	if err := createFolder(ctx, d, f.target); err != nil {
		return err
	}
	if !f.select_ {
		return nil
	}
	sel, err := c.Select(f.name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("EXAMINE %q: %w", f.name, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	source := base + "/" + f.name
	done, err := d.Store.Imported(ctx, d.Account.ID, source)
	if err != nil {
		return err
	}
	// Idents of messages copied under another UIDVALIDITY: the same message
	// renumbered, not a new one.
	prefix := strconv.FormatUint(uint64(sel.UIDValidity), 10) + "."
	oldIdents := map[string]bool{}
	for item, id := range done {
		if id != "" && !strings.HasPrefix(item, prefix) {
			oldIdents[id] = true
		}
	}
	all := imap.UIDSet{}
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true, Envelope: true}).Collect()
	if err != nil {
		return fmt.Errorf("FETCH %q: %w", f.name, err)
	}
	var todo []pending
	for _, m := range msgs {
		var msgID string
		if m.Envelope != nil {
			msgID = m.Envelope.MessageID
		}
		p := pending{uid: m.UID, size: m.RFC822Size, ident: ident(msgID, m.RFC822Size, m.InternalDate)}
		_, copied := done[imapItem(sel.UIDValidity, m.UID)]
		if copied || (p.ident != "" && oldIdents[p.ident]) {
			r.done++
			r.sum.Skipped++
			continue
		}
		todo = append(todo, p)
	}
	r.report()
	for len(todo) > 0 {
		n, size := 0, int64(0)
		for n < len(todo) && n < batchMessages && (n == 0 || size+todo[n].size <= batchBytes) {
			size += todo[n].size
			n++
		}
		if err := r.imapBatch(ctx, c, d, f, source, sel.UIDValidity, todo[:n]); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

func (r *run) imapBatch(ctx context.Context, c *imapclient.Client, d Dest, f folder, source string, validity uint32, batch []pending) error {
	var set imap.UIDSet
	byUID := make(map[imap.UID]pending, len(batch))
	for _, p := range batch {
		set.AddNum(p.uid)
		byUID[p.uid] = p
	}
	body := &imap.FetchItemBodySection{Peek: true}
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{body}})
	var failed error
	for {
		data := cmd.Next()
		if data == nil {
			break
		}
		m, err := data.Collect()
		if err != nil {
			failed = err
			break
		}
		p, ok := byUID[m.UID]
		if !ok {
			continue // an unsolicited FETCH, such as a flag change by another client
		}
		delete(byUID, m.UID)
		content := m.FindBodySection(body)
		if content == nil {
			r.failed(d.Account.Address, source, imapItem(validity, m.UID), errors.New("the server sent no content"))
			continue
		}
		var flags []string
		for _, fl := range m.Flags {
			flags = append(flags, string(fl))
		}
		err = r.put(ctx, d, f.target, message{
			content: content,
			flags:   flags,
			date:    m.InternalDate,
			origin:  mailstore.Origin{Source: source, Item: imapItem(validity, m.UID), Ident: p.ident},
		})
		if err != nil {
			cmd.Close()
			return err
		}
	}
	if err := cmd.Close(); err != nil && failed == nil {
		failed = err
	}
	if failed != nil {
		return fmt.Errorf("FETCH %q: %w", f.name, failed)
	}
	// Messages expunged on the server meanwhile are not errors, but are no
	// longer to be waited for.
	r.done += len(byUID)
	return nil
}
