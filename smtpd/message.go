package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
)

// received is the trace field this server prepends to every message
// (RFC 5321 4.4), with the protocol keyword of RFC 3848 and RFC 6531.
func (ss *session) received(tx *transaction) string {
	proto := "ESMTP"
	if tx.opts.UTF8 {
		proto = "UTF8SMTP"
	}
	tlsInfo := ""
	if st, ok := ss.conn.TLSConnectionState(); ok {
		proto += "S"
		tlsInfo = fmt.Sprintf("\r\n\t(using %s with cipher %s)", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if ss.acct != nil {
		proto += "A"
	}
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (sealmail) with %s id %s%s;\r\n\t%s\r\n",
		traceToken(ss.conn.Hostname()), ss.ip, ss.srv.host, proto, tx.id, tlsInfo, time.Now().Format(time.RFC1123Z))
}

// traceToken keeps a client-chosen HELO name from breaking the field: it is
// one token of printable ASCII, without the comment delimiters.
func traceToken(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || r == '(' || r == ')' {
			return '?'
		}
		return r
	}, s)
}

// checkHeader applies submission's rules to the message header: every From:
// address must belong to the account. It returns the Date and Message-ID
// fields to add if they are missing (RFC 6409 8.2, 8.3).
func (ss *session) checkHeader(raw []byte) (string, error) {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil && err != io.EOF {
		return "", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "The message header cannot be read: " + err.Error()}
	}
	var addrs []*mail.Address
	// Every From: field counts: a second one must not slip a forged address past.
	for _, from := range h.Values("From") {
		list, err := addressParser.ParseList(from)
		if err != nil {
			return "", policyError("The From: field cannot be parsed (%v); it must name %s or a list you belong to", err, ss.acct.Address)
		}
		addrs = append(addrs, list...)
	}
	if len(addrs) == 0 {
		return "", policyError("The message has no From: address; it must name %s or a list you belong to", ss.acct.Address)
	}
	for _, a := range addrs {
		owns, err := ss.srv.Store.Owns(context.Background(), *ss.acct, a.Address)
		if err != nil {
			ss.srv.log.Error("smtp owns", "user", ss.acct.Address, "from", a.Address, "err", err)
			return "", errTemporary
		}
		if !owns {
			return "", policyError("From: %s is not an address of account %s: you may send only as your own address or a list you belong to", a.Address, ss.acct.Address)
		}
	}
	var add strings.Builder
	if !h.Has("Date") {
		fmt.Fprintf(&add, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	}
	if !h.Has("Message-Id") {
		fmt.Fprintf(&add, "Message-ID: <%s.%s@%s>\r\n", time.Now().UTC().Format("20060102150405"), newID(), ss.srv.host)
	}
	return add.String(), nil
}

// addressParser reads From: addresses whatever charset their display names
// use: only the addresses matter here, so names are not decoded.
var addressParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// stripAuthResults removes the Authentication-Results fields whose authserv-id
// is this server's (RFC 8601 5): only this server may say what it verified, so
// such a field from outside is a forgery meant to show a "pass" to readers.
// It works in place on msg = buf[at:], moving the header fields it keeps
// towards the body, and returns the message's new start; every other byte is
// left as it came.
func stripAuthResults(buf []byte, at int, authservID string) int {
	msg := buf[at:]
	var keep []int // [start, end) pairs of the header's fields to keep, relative to msg
	drop := false
	i := 0
	for i < len(msg) {
		end := bytes.IndexByte(msg[i:], '\n')
		if end < 0 {
			end = len(msg)
		} else {
			end += i + 1
		}
		line := msg[i:end]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the end of the header
		}
		if line[0] != ' ' && line[0] != '\t' {
			drop = forgedAuthResults(line, msg[end:], authservID)
			if !drop {
				keep = append(keep, i, end)
			}
		} else if !drop {
			if n := len(keep); n > 0 && keep[n-1] == i {
				keep[n-1] = end
			} else {
				keep = append(keep, i, end)
			}
		}
		i = end
	}
	if len(keep) == 2 && keep[0] == 0 && keep[1] == i || len(keep) == 0 && i == 0 {
		return at
	}
	// Move the kept fields, last first, so that they end where the header did.
	to := at + i
	for k := len(keep) - 2; k >= 0; k -= 2 {
		n := keep[k+1] - keep[k]
		to -= n
		copy(buf[to:], buf[at+keep[k]:at+keep[k+1]])
	}
	return to
}

// forgedAuthResults reports whether the field starting with line is an
// Authentication-Results field of authservID; rest follows the line, for the
// case of an authserv-id on a continuation line.
func forgedAuthResults(line, rest []byte, authservID string) bool {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || !strings.EqualFold(string(bytes.TrimRight(name, " \t")), "Authentication-Results") {
		return false
	}
	v := strings.TrimLeft(string(value), " \t\r\n")
	if v == "" {
		// The authserv-id is on the next line of the field.
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			end = len(rest)
		}
		v = strings.TrimLeft(string(rest[:end]), " \t")
	}
	for strings.HasPrefix(v, "(") {
		// A comment before the authserv-id.
		_, after, ok := strings.Cut(v, ")")
		if !ok {
			return false
		}
		v = strings.TrimLeft(after, " \t")
	}
	id := v[:strings.IndexFunc(v+";", func(r rune) bool { return r == ';' || r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '(' })]
	return strings.EqualFold(id, authservID)
}
