package imapd

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"sealmail/mailstore"
)

// List answers LIST (with LIST-EXTENDED selection and return options,
// LIST-STATUS, SPECIAL-USE and CHILDREN attributes) and LSUB. imapserver turns
// names into modified UTF-7 for clients that have not enabled UTF-8.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "" asks for the hierarchy delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	ctx := s.cmdCtx()
	mbs, err := s.srv.Store.Mailboxes(ctx, s.acct.ID)
	if err != nil {
		return s.fail("list", err)
	}
	ref = inboxCase(ref)
	for i, p := range patterns {
		patterns[i] = inboxCase(p)
	}

	// Subscriptions whose mailbox was deleted are names of their own.
	var orphans map[string]bool
	if options.SelectSubscribed || options.ReturnSubscribed {
		names, err := s.srv.Store.Subscriptions(ctx, s.acct.ID)
		if err != nil {
			return s.fail("list", err)
		}
		orphans = make(map[string]bool, len(names))
		for _, n := range names {
			orphans[n] = true
		}
	}
	byName := make(map[string]*mailstore.Mailbox, len(mbs))
	hasChildren := map[string]bool{}
	var subscribedNames []string
	for i := range mbs {
		m := &mbs[i]
		byName[m.Name] = m
		for p := parent(m.Name); p != ""; p = parent(p) {
			hasChildren[p] = true
		}
		if m.Subscribed {
			subscribedNames = append(subscribedNames, m.Name)
		}
	}
	// Parents that are not mailboxes themselves (their mailbox was deleted but
	// not its children) are hierarchy levels a "%" can stop at.
	names := make([]string, 0, len(mbs))
	for _, m := range mbs {
		names = append(names, m.Name)
	}
	for p := range hasChildren {
		if byName[p] == nil && !(orphans[p] && options.SelectSubscribed) {
			names = append(names, p)
		}
	}
	for n := range orphans {
		if byName[n] != nil {
			delete(orphans, n) // a mailbox of that name exists again
			continue
		}
		subscribedNames = append(subscribedNames, n)
		// Only the SUBSCRIBED selection lists names that are no mailbox;
		// RETURN (SUBSCRIBED) alone marks the mailboxes listed anyway.
		if options.SelectSubscribed {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	// RECURSIVEMATCH (RFC 5258 3.5): a name is reported for a subscribed
	// descendant that the patterns do not match themselves.
	subscribedBelow := func(name string) bool {
		prefix := name + mailstore.Separator
		for _, n := range subscribedNames {
			if strings.HasPrefix(n, prefix) && !matchAny(n, ref, patterns, false) {
				return true
			}
		}
		return false
	}

	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return s.fail("list", err)
		}
		m := byName[name]
		if !matchAny(name, ref, patterns, m == nil && !orphans[name]) {
			continue
		}
		data := imap.ListData{Delim: delim, Mailbox: name}
		switch {
		case m == nil && (orphans[name] || options.SelectSubscribed):
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		case m == nil:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if hasChildren[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		subscribed := m != nil && m.Subscribed || orphans[name]
		if subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		// Special-use attributes go out even unasked: clients that never say
		// RETURN (SPECIAL-USE) still look for them, and RFC 6154 allows it.
		if m != nil && m.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(m.SpecialUse))
		}
		if options.SelectSpecialUse && (m == nil || m.SpecialUse == "") {
			continue
		}
		below := options.SelectRecursiveMatch && subscribedBelow(name)
		if options.SelectSubscribed && !subscribed && !below {
			continue
		}
		if below {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.ReturnStatus != nil && m != nil {
			st, err := s.status(*m, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

func parent(name string) string {
	if i := strings.LastIndex(name, mailstore.Separator); i > 0 {
		return name[:i]
	}
	return ""
}

// matchAny reports whether name matches one of the patterns. A hierarchy level
// that is no mailbox is only shown where a pattern's "%" stops at it: "*"
// reaches its children anyway.
func matchAny(name, ref string, patterns []string, level bool) bool {
	for _, p := range patterns {
		if !imapserver.MatchList(name, delim, ref, p) {
			continue
		}
		if !level || strings.Contains(p, "%") {
			return true
		}
	}
	return false
}

// inboxCase spells a leading INBOX in capitals: the name is case-insensitive,
// and mailbox names are stored with INBOX canonical.
func inboxCase(p string) string {
	if len(p) >= len(mailstore.Inbox) && strings.EqualFold(p[:len(mailstore.Inbox)], mailstore.Inbox) &&
		(len(p) == len(mailstore.Inbox) || strings.ContainsRune("/*%", rune(p[len(mailstore.Inbox)]))) {
		return mailstore.Inbox + p[len(mailstore.Inbox):]
	}
	return p
}
