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
