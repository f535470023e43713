package imapserver

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
	"github.com/emersion/go-imap/v2/internal/utf7"
)

func (c *Conn) handleList(dec *imapwire.Decoder) error {
	ref, pattern, options, err := readListCmd(dec)
	if err != nil {
		return err
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}

	w := &ListWriter{
		conn:    c,
		options: options,
	}
	return c.session.List(w, ref, pattern, options)
}

func (c *Conn) handleLSub(dec *imapwire.Decoder) error {
	var ref string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&ref) || !dec.ExpectSP() {
		return dec.Err()
	}
	pattern, err := readListMailbox(dec)
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}

	// sealmail: RECURSIVEMATCH gives what RFC 3501 wants of LSUB: a level
	// that "%" stops at, unsubscribed but with subscribed children, is listed
	// (as \Noselect, see writeLSub).
	options := &imap.ListOptions{SelectSubscribed: true, SelectRecursiveMatch: true}
	w := &ListWriter{
		conn: c,
		lsub: true,
	}
	return c.session.List(w, ref, []string{pattern}, options)
}

func (c *Conn) writeList(data *imap.ListData) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom("*").SP().Atom("LIST").SP()
	enc.List(len(data.Attrs), func(i int) {
		enc.MailboxAttr(data.Attrs[i])
	})
	enc.SP()
	if data.Delim == 0 {
		enc.NIL()
	} else {
		enc.Quoted(string(data.Delim))
	}
	enc.SP().Mailbox(data.Mailbox)

	var ext []string
	if data.ChildInfo != nil {
		ext = append(ext, "CHILDINFO")
	}
	if data.OldName != "" {
		ext = append(ext, "OLDNAME")
	}

	// TODO: omit extended data if the client didn't ask for it
	if len(ext) > 0 {
		enc.SP().List(len(ext), func(i int) {
			name := ext[i]
			enc.Atom(name).SP()
			switch name {
			case "CHILDINFO":
				enc.Special('(')
				if data.ChildInfo.Subscribed {
					enc.Quoted("SUBSCRIBED")
				}
				enc.Special(')')
			case "OLDNAME":
				enc.Special('(').Mailbox(data.OldName).Special(')')
			default:
				panic(fmt.Errorf("imapserver: unknown LIST extended-item %v", name))
			}
		})
	}

	return enc.CRLF()
}

func (c *Conn) writeLSub(data *imap.ListData) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	// sealmail: LSUB has RFC 3501's attributes: \Noselect for a name that is
	// not subscribed itself (listed for its children) or is no mailbox, and
	// neither \Subscribed nor \NonExistent, which LIST-EXTENDED added.
	attrs := make([]imap.MailboxAttr, 0, len(data.Attrs)+1)
	subscribed, noSelect := false, false
	for _, a := range data.Attrs {
		switch a {
		case imap.MailboxAttrSubscribed:
			subscribed = true
		case imap.MailboxAttrNonExistent, imap.MailboxAttrNoSelect:
			noSelect = true
		default:
			attrs = append(attrs, a)
		}
	}
	if noSelect || !subscribed {
		attrs = append(attrs, imap.MailboxAttrNoSelect)
	}
	enc.Atom("*").SP().Atom("LSUB").SP()
	enc.List(len(attrs), func(i int) {
		enc.MailboxAttr(attrs[i])
	})
	enc.SP()
	if data.Delim == 0 {
		enc.NIL()
	} else {
		enc.Quoted(string(data.Delim))
	}
	enc.SP().Mailbox(data.Mailbox)
	return enc.CRLF()
}

func readListCmd(dec *imapwire.Decoder) (ref string, patterns []string, options *imap.ListOptions, err error) {
	options = &imap.ListOptions{}

	if !dec.ExpectSP() {
		return "", nil, nil, dec.Err()
	}

	hasSelectOpts, err := dec.List(func() error {
		var selectOpt string
		if !dec.ExpectAString(&selectOpt) {
			return dec.Err()
		}
		switch strings.ToUpper(selectOpt) {
		case "SUBSCRIBED":
			options.SelectSubscribed = true
		case "REMOTE":
			options.SelectRemote = true
		case "RECURSIVEMATCH":
			options.SelectRecursiveMatch = true
		case "SPECIAL-USE":
			options.SelectSpecialUse = true
		default:
			return newClientBugError("Unknown LIST select option")
		}
		return nil
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("in list-select-opts: %w", err)
	}
	if hasSelectOpts && !dec.ExpectSP() {
		return "", nil, nil, dec.Err()
	}

	if !dec.ExpectMailbox(&ref) || !dec.ExpectSP() {
		return "", nil, nil, dec.Err()
	}

	hasPatterns, err := dec.List(func() error {
		pattern, err := readListMailbox(dec)
		if err == nil && pattern != "" {
			patterns = append(patterns, pattern)
		}
		return err
	})
	if err != nil {
		return "", nil, nil, err
	} else if hasPatterns && len(patterns) == 0 {
		return "", nil, nil, newClientBugError("LIST-EXTENDED requires a non-empty parenthesized pattern list")
	} else if !hasPatterns {
		pattern, err := readListMailbox(dec)
		if err != nil {
			return "", nil, nil, err
		}
		if pattern != "" {
			patterns = append(patterns, pattern)
		}
	}

	if dec.SP() { // list-return-opts
		var atom string
		if !dec.ExpectAtom(&atom) || !dec.Expect(strings.EqualFold(atom, "RETURN"), "RETURN") || !dec.ExpectSP() {
			return "", nil, nil, dec.Err()
		}

		err := dec.ExpectList(func() error {
			return readReturnOption(dec, options)
		})
		if err != nil {
			return "", nil, nil, fmt.Errorf("in list-return-opts: %w", err)
		}
	}

	if !dec.ExpectCRLF() {
		return "", nil, nil, dec.Err()
	}

	if options.SelectRecursiveMatch && !options.SelectSubscribed {
		return "", nil, nil, newClientBugError("The LIST RECURSIVEMATCH select option requires SUBSCRIBED")
	}

	return ref, patterns, options, nil
}

func readListMailbox(dec *imapwire.Decoder) (string, error) {
	var mailbox string
	if !dec.String(&mailbox) {
		if !dec.Expect(dec.Func(&mailbox, isListChar), "list-char") {
			return "", dec.Err()
		}
	}
	name, err := utf7.Decode(mailbox)
	if err != nil {
		// sealmail: the client's mistake, not an internal error.
		return "", newClientBugError("Mailbox pattern is not valid modified UTF-7")
	}
	return name, nil
}

func isListChar(ch byte) bool {
	switch ch {
	case '%', '*': // list-wildcards
		return true
	case ']': // resp-specials
		return true
	default:
		return imapwire.IsAtomChar(ch)
	}
}

func readReturnOption(dec *imapwire.Decoder, options *imap.ListOptions) error {
	var name string
	if !dec.ExpectAtom(&name) {
		return dec.Err()
	}

	switch strings.ToUpper(name) {
	case "SUBSCRIBED":
		options.ReturnSubscribed = true
	case "CHILDREN":
		options.ReturnChildren = true
	case "SPECIAL-USE":
		options.ReturnSpecialUse = true
	case "STATUS":
		if !dec.ExpectSP() {
			return dec.Err()
		}
		options.ReturnStatus = new(imap.StatusOptions)
		return dec.ExpectList(func() error {
			return readStatusItem(dec, options.ReturnStatus)
		})
	default:
		return newClientBugError("Unknown LIST RETURN options")
	}
	return nil
}

// ListWriter writes LIST responses.
type ListWriter struct {
	conn    *Conn
	options *imap.ListOptions
	lsub    bool
}

// WriteList writes a single LIST response for a mailbox.
func (w *ListWriter) WriteList(data *imap.ListData) error {
	if w.lsub {
		return w.conn.writeLSub(data)
	}

	if err := w.conn.writeList(data); err != nil {
		return err
	}
	if w.options.ReturnStatus != nil && data.Status != nil {
		if err := w.conn.writeStatus(data.Status, w.options.ReturnStatus); err != nil {
			return err
		}
	}
	return nil
}

// MatchList checks whether a reference and a pattern matches a mailbox.
func MatchList(name string, delim rune, reference, pattern string) bool {
	var delimStr string
	if delim != 0 {
		delimStr = string(delim)
	}

	if delimStr != "" && strings.HasPrefix(pattern, delimStr) {
		reference = ""
		pattern = strings.TrimPrefix(pattern, delimStr)
	}
	if reference != "" {
		if delimStr != "" && !strings.HasSuffix(reference, delimStr) {
			reference += delimStr
		}
		if !strings.HasPrefix(name, reference) {
			return false
		}
		name = strings.TrimPrefix(name, reference)
	}

	return matchList(name, delimStr, pattern)
}

// matchList reports whether name matches pattern, in which "*" matches any
// run of characters and "%" any run without the delimiter.
//
// sealmail: upstream backtracked, trying every split of the name at every
// wildcard, which is exponential in the number of wildcards: "%*" repeated 8
// times over 900 folders took 109 s, 40 repeats never ended. This simulates the
// pattern as an NFA instead: the set of pattern positions reachable after each
// character of the name, which costs at most len(name) × len(pattern) steps and
// no recursion.
func matchList(name, delim, pattern string) bool {
	pat := compileListPattern(pattern)
	var d rune = -1
	if r := []rune(delim); len(r) == 1 {
		d = r[0]
	}
	// A name shorter than the pattern's literal characters cannot match.
	if pat.literals > len(name) {
		return false
	}

	// cur and next are sets of positions in pat.items, kept as a list of
	// positions plus a mark per position so none is added twice.
	n := len(pat.items)
	mark := make([]int, n+1)
	cur := make([]int, 0, n+1)
	next := make([]int, 0, n+1)
	gen := 1
	// add puts position i in the set with its closure: a wildcard may match
	// nothing, so the position after it is reachable too.
	add := func(set []int, i int) []int {
		for ; i <= n; i++ {
			if mark[i] == gen {
				break
			}
			mark[i] = gen
			set = append(set, i)
			if i == n || !pat.items[i].wild {
				break
			}
		}
		return set
	}
	cur = add(cur, 0)
	for _, c := range name {
		gen++
		next = next[:0]
		for _, i := range cur {
			if i == n {
				continue
			}
			switch it := pat.items[i]; {
			case !it.wild:
				if it.lit == c {
					next = add(next, i+1)
				}
			case it.star || c != d:
				next = add(next, i)
			}
		}
		if len(next) == 0 {
			return false
		}
		cur, next = next, cur
	}
	for _, i := range cur {
		if i == n {
			return true
		}
	}
	return false
}

type listItem struct {
	wild bool // a wildcard, else the literal character lit
	star bool // for a wildcard: "*" rather than "%"
	lit  rune
}

type listPattern struct {
	items    []listItem
	literals int // bytes of literal characters, a lower bound on a match's length
}

// compileListPattern splits a pattern into items, folding each run of
// wildcards into one: "%*", "*%" and "**" are "*", "%%" is "%".
func compileListPattern(pattern string) listPattern {
	var p listPattern
	for len(pattern) > 0 {
		c, size := utf8.DecodeRuneInString(pattern)
		pattern = pattern[size:]
		switch c {
		case '*', '%':
			if k := len(p.items) - 1; k >= 0 && p.items[k].wild {
				p.items[k].star = p.items[k].star || c == '*'
				continue
			}
			p.items = append(p.items, listItem{wild: true, star: c == '*'})
		default:
			p.items = append(p.items, listItem{lit: c})
			p.literals += size
		}
	}
	return p
}
