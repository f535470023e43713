// Package vacation sends out-of-office replies (RFC 3834) for accounts whose
// owner set one (mailstore.Store.SetVacation: the CLI or the web portal).
//
// smtpd tells the Responder of every message it stored in local inboxes,
// once the message is durable. The responder answers the envelope sender
// only when RFC 3834 section 2 and common practice (Sieve's vacation, RFC
// 5230 4.5-4.6) allow it: never a null sender, a mailer daemon or list
// address, a list message (List-*, Precedence: bulk/list/junk), an automatic
// message (Auto-Submitted other than "no", X-Auto-Response-Suppress), nor
// a message that does not name the account (or a personal alias of it) in
// To, Cc, Bcc or their Resent- twins; and once per sender per 7 days,
// remembered in the store across restarts. The reply is sent like any mail:
// from the account's address, with a null envelope sender (RFC 3834 3.3, so
// it can never cause a bounce or a reply), into the store for local senders
// and through the outbound queue, DKIM-signed by the relay, for the others.
package vacation

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // original subjects in any charset
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"sealmail/mailstore"
)

// Every is how long a sender who got a reply gets no other (RFC 3834 2
// suggests a week; Sieve's vacation defaults to it too).
const Every = 7 * 24 * time.Hour

// Responder answers messages for accounts on vacation.
type Responder struct {
	Store *mailstore.Store
	// Queue is woken when a reply was queued for a remote sender (the relay).
	Queue interface{ Wake() }
	// Hostname names this server in the replies' Message-IDs.
	Hostname string
	Logger   *slog.Logger // nil means slog.Default()
	// Sent, if set, is told of every reply sent (monitoring).
	Sent func()
}

func (r *Responder) log() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

// Delivered is told of a message stored in the inboxes of accounts: from is
// its envelope sender and header its header as stored. It sends what
// replies are owed and returns when they are durable; failures are logged,
// never returned: the message itself is delivered whatever becomes of them.
func (r *Responder) Delivered(ctx context.Context, from string, header []byte, accounts []mailstore.Account) {
	var h mail.Header
	checked := false
	why := ""
	for _, a := range accounts {
		v, err := r.Store.Vacation(ctx, a.Address)
		if err != nil {
			if !errors.Is(err, mailstore.ErrNotFound) {
				r.log().Error("vacation: reading the out-of-office reply", "account", a.Address, "err", err)
			}
			continue
		}
		now := time.Now()
		if v == nil || !v.Active(now) {
			continue
		}
		if !checked {
			// Parsed only for the rare message to someone away.
			checked = true
			th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(header)))
			if err != nil {
				why = "header cannot be read"
			} else {
				h = mail.Header{Header: message.Header{Header: th}}
				why = Skip(from, h)
			}
		}
		if why != "" {
			r.log().Debug("vacation: no reply", "account", a.Address, "from", from, "why", why)
			continue
		}
		if err := r.answer(ctx, a, v, from, h, now); err != nil {
			r.log().Error("vacation: reply not sent", "account", a.Address, "to", from, "err", err)
		}
	}
}

// answer sends a's reply to sender, unless one went less than Every ago or
// the message does not name a.
func (r *Responder) answer(ctx context.Context, a mailstore.Account, v *mailstore.Vacation, sender string, h mail.Header, now time.Time) error {
	if ok, err := r.Store.Owns(ctx, a, sender); err != nil || ok {
		if ok {
			r.log().Debug("vacation: no reply", "account", a.Address, "from", sender, "why", "the account's own address")
		}
		return err
	}
	named, err := r.names(ctx, a, h)
	if err != nil || !named {
		if err == nil {
			r.log().Debug("vacation: no reply", "account", a.Address, "from", sender, "why", "not addressed to the account")
		}
		return err
	}
	ok, err := r.Store.ClaimVacationReply(ctx, a.Address, sender, now, Every)
	if err != nil || !ok {
		if err == nil {
			r.log().Debug("vacation: no reply", "account", a.Address, "from", sender, "why", "answered in the last 7 days")
		}
		return err
	}
	msg, err := Reply(a, v, sender, h, r.Hostname, now)
	if err == nil {
		err = r.send(ctx, sender, msg)
	}
	if err != nil {
		if rerr := r.Store.ReleaseVacationReply(ctx, a.Address, sender, now); rerr != nil {
			r.log().Error("vacation: releasing the reply record", "account", a.Address, "to", sender, "err", rerr)
		}
		return err
	}
	r.log().Info("vacation: replied", "account", a.Address, "to", sender)
	if r.Sent != nil {
		r.Sent()
	}
	return nil
}

// names reports whether a recipient field of the message names a: its
// address, or an alias of a alone (not a list it is on, nor a catch-all).
func (r *Responder) names(ctx context.Context, a mailstore.Account, h mail.Header) (bool, error) {
	for _, key := range []string{"To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"} {
		for _, field := range h.Values(key) {
			for _, addr := range parseAddresses(field) {
				if mailstore.LoginName(addr) == a.Address {
					return true, nil
				}
				owns, err := r.Store.Owns(ctx, a, addr)
				if err != nil || !owns {
					if err != nil {
						return false, err
					}
					continue
				}
				accts, remote, err := r.Store.Resolve(ctx, addr)
				if err != nil {
					return false, err
				}
				if len(accts) == 1 && len(remote) == 0 {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// send delivers a reply to sender: into the store for an address hosted
// here, else through the outbound queue, with the null envelope sender.
func (r *Responder) send(ctx context.Context, sender string, msg []byte) error {
	_, domain, err := mailstore.SplitAddress(sender)
	if err != nil {
		return err
	}
	d := mailstore.Delivery{Content: mailstore.Bytes(msg), Date: time.Now()}
	local, err := r.Store.IsLocalDomain(ctx, domain)
	if err != nil {
		return err
	}
	if local {
		accts, remote, err := r.Store.Resolve(ctx, sender)
		if err != nil {
			return err
		}
		for _, a := range accts {
			if !a.Disabled {
				d.Targets = append(d.Targets, mailstore.Target{AccountID: a.ID})
			}
		}
		d.Remote = remote
	} else {
		d.Remote = []string{sender}
	}
	if len(d.Targets) == 0 && len(d.Remote) == 0 {
		return fmt.Errorf("%s: nobody to deliver to", sender)
	}
	acc, err := r.Store.Accept(ctx, d)
	if err != nil {
		return err
	}
	if acc.QueueID != 0 && r.Queue != nil {
		r.Queue.Wake()
	}
	for _, dl := range acc.Delivered {
		if dl.Err == nil {
			return nil
		}
	}
	if acc.QueueID != 0 {
		return nil
	}
	return acc.Delivered[0].Err
}

// Skip says why a message from the envelope sender from with header h gets
// no automatic reply whoever it was for, or "" if it may get one.
func Skip(from string, h mail.Header) string {
	if from == "" {
		return "null sender"
	}
	local, _, err := mailstore.SplitAddress(from)
	if err != nil {
		return "sender address cannot be read"
	}
	switch {
	case local == "mailer-daemon", local == "listserv", local == "majordomo",
		strings.HasPrefix(local, "owner-"), strings.HasSuffix(local, "-request"),
		strings.HasSuffix(local, "-owner"), strings.HasSuffix(local, "-bounces"):
		// RFC 5230 4.6: addresses of mail software and list managers.
		return "sender is mail software or a list manager"
	}
	if v := token(h.Get("Auto-Submitted")); v != "" && v != "no" {
		return "Auto-Submitted: " + v
	}
	switch token(h.Get("Precedence")) {
	case "bulk", "list", "junk":
		return "Precedence: " + token(h.Get("Precedence"))
	}
	for _, k := range []string{"List-Id", "List-Post", "List-Unsubscribe", "List-Help", "List-Subscribe", "List-Owner", "List-Archive"} {
		if h.Has(k) {
			return k + " present (a list message)"
		}
	}
	// Exchange's way of asking for no out-of-office replies.
	for _, v := range strings.Split(h.Get("X-Auto-Response-Suppress"), ",") {
		if v = strings.ToLower(strings.TrimSpace(v)); v == "oof" || v == "all" {
			return "X-Auto-Response-Suppress: " + v
		}
	}
	if t, _, _ := h.ContentType(); t == "multipart/report" {
		return "a delivery or disposition report"
	}
	return ""
}

// token is a field's first word, lower-cased, without comments or parameters.
func token(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	return v
}

func parseAddresses(field string) []string {
	list, err := mail.ParseAddressList(field)
	if err != nil {
		return nil
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out
}

// Reply builds a's out-of-office reply to a message with header h from
// sender (RFC 3834 3.1): "Auto: " and the vacation's subject (or the
// message's), In-Reply-To and References, Auto-Submitted: auto-replied, the
// vacation's text or a bilingual default, as UTF-8 quoted-printable.
func Reply(a mailstore.Account, v *mailstore.Vacation, sender string, h mail.Header, hostname string, now time.Time) ([]byte, error) {
	subject := v.Subject
	if subject == "" {
		subject, _ = h.Subject()
		subject = oneLine(subject)
	}
	if len(subject) >= 5 && strings.EqualFold(subject[:5], "auto:") {
		subject = strings.TrimSpace(subject[5:])
	}
	body := v.Body
	if strings.TrimSpace(body) == "" {
		body = DefaultText(a, v)
	}
	var b bytes.Buffer
	from := (&mail.Address{Name: a.Name, Address: a.Address}).String()
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: <%s>\r\n", sender)
	fmt.Fprintf(&b, "Subject: Auto:%s\r\n", encodeWords(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.%s@%s>\r\n", now.UTC().Format("20060102150405"), randomID(), hostname)
	if id := msgID(h.Get("Message-Id")); id != "" {
		refs := msgIDs(h.Get("References"))
		if len(refs) == 0 {
			refs = msgIDs(h.Get("In-Reply-To"))
		}
		fmt.Fprintf(&b, "In-Reply-To: %s\r\n", id)
		fmt.Fprintf(&b, "References: %s\r\n", strings.Join(append(refs, id), "\r\n "))
	}
	b.WriteString("Auto-Submitted: auto-replied\r\n")
	b.WriteString("X-Auto-Response-Suppress: All\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	body = strings.ReplaceAll(body, "\r\n", "\n")
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// DefaultText is the reply's text when its owner wrote none: Vietnamese,
// then English, with the last day away when there is one.
func DefaultText(a mailstore.Account, v *mailstore.Vacation) string {
	vi := "Tôi hiện vắng mặt và sẽ trả lời thư của bạn khi trở lại."
	en := "I am away and will answer your message when I am back."
	if !v.Until.IsZero() {
		u := v.Until.Local() // the zone the CLI and the portal read days in
		if u.Hour() == 0 && u.Minute() == 0 && u.Second() == 0 {
			// Until is the first moment back: the last day away is the one before.
			last := u.AddDate(0, 0, -1)
			vi = fmt.Sprintf("Tôi vắng mặt đến hết ngày %s và sẽ trả lời thư của bạn khi trở lại.", last.Format("02/01/2006"))
			en = fmt.Sprintf("I am away until %s inclusive and will answer your message when I am back.", last.Format("2 January 2006"))
		} else {
			vi = fmt.Sprintf("Tôi vắng mặt đến %s ngày %s và sẽ trả lời thư của bạn khi trở lại.", u.Format("15:04"), u.Format("02/01/2006"))
			en = fmt.Sprintf("I am away until %s and will answer your message when I am back.", u.Format("15:04 on 2 January 2006"))
		}
	}
	sig := a.Address
	if a.Name != "" {
		sig = a.Name + " <" + a.Address + ">"
	}
	return vi + "\n\n" + en + "\n\n-- \n" + sig + "\n(Thư trả lời tự động / Automatic reply)\n"
}

// encodeWords is the rest of a header field after a word: s, after a
// space, or as RFC 2047 words when it is not ASCII, each on a line of its
// own so that none passes 78 characters.
func encodeWords(s string) string {
	if s == "" {
		return ""
	}
	enc := mime.QEncoding.Encode("utf-8", s)
	if enc == s {
		return " " + s
	}
	return "\r\n " + strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// msgID returns the first <id> in a Message-ID field, or "".
func msgID(v string) string {
	if ids := msgIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// msgIDs returns the <id>s of a field, leniently: anything between angle
// brackets without spaces, the way clients read References.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return out
		}
		id := v[i : i+j+1]
		if !strings.ContainsAny(id, " \t\r\n") && len(id) > 2 {
			out = append(out, id)
		}
		v = v[i+j+1:]
	}
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
