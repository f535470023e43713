package relay

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"time"
)

// dsnKind is what a delivery status notification reports.
type dsnKind int

const (
	dsnFailed  dsnKind = iota // permanent failure: the message is returned
	dsnDelayed                // still trying
)

// dsnRcpt is one recipient reported in a DSN.
type dsnRcpt struct {
	addr string
	err  string // the last error, as the server or the relay put it
}

// dsn is what goes into one notification.
type dsn struct {
	kind     dsnKind
	hostname string // the reporting MTA
	sender   string
	arrival  time.Time
	until    time.Time // for dsnDelayed: when the relay gives up
	rcpts    []dsnRcpt
	header   []byte // the original message's header (headerOf)
}

var (
	enhancedCode = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)
	basicCode    = regexp.MustCompile(`\b([245])\d\d\b`)
)

// status derives an RFC 3463 status code from an error text.
func (d *dsn) status(errText string) string {
	if m := enhancedCode.FindString(errText); m != "" {
		return m
	}
	if m := basicCode.FindStringSubmatch(errText); m != nil {
		return m[1] + ".0.0"
	}
	if d.kind == dsnDelayed {
		return "4.0.0"
	}
	return "5.0.0"
}

// build writes the notification as a multipart/report (RFC 3464) with a
// Vietnamese and English explanation, the machine-readable status of each
// recipient, and the original message's header.
func (d *dsn) build() []byte {
	boundary := randomToken(12)
	subject, date := originalSubjectDate(d.header)
	var b bytes.Buffer
	var subj string
	if d.kind == dsnFailed {
		subj = "Thư không gửi được / Undelivered mail returned to sender"
	} else {
		subj = "Thư đang chậm gửi / Delayed mail (still being retried)"
	}
	fmt.Fprintf(&b, "From: %s <MAILER-DAEMON@%s>\r\n", mime.QEncoding.Encode("utf-8", "Hệ thống thư / Mail Delivery System"), d.hostname)
	fmt.Fprintf(&b, "To: <%s>\r\n", d.sender)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subj))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", randomToken(16), d.hostname)
	b.WriteString("Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status; boundary=\"%s\"\r\n\r\n", boundary)
	b.WriteString("This is a delivery status notification (RFC 3464).\r\n")

	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary)
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(d.human(subject, date), "\n", "\r\n")))
	qp.Close()

	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary)
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", d.hostname)
	fmt.Fprintf(&b, "Arrival-Date: %s\r\n", d.arrival.Format(time.RFC1123Z))
	for _, r := range d.rcpts {
		action := "failed"
		if d.kind == dsnDelayed {
			action = "delayed"
		}
		fmt.Fprintf(&b, "\r\nFinal-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\n", r.addr, action, d.status(r.err))
		if r.err != "" {
			fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\n", oneLine(r.err))
		}
		if d.kind == dsnDelayed {
			fmt.Fprintf(&b, "Will-Retry-Until: %s\r\n", d.until.Format(time.RFC1123Z))
		}
	}

	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary)
	b.Write(d.header)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}

func (d *dsn) human(subject, date string) string {
	var list strings.Builder
	for _, r := range d.rcpts {
		fmt.Fprintf(&list, "  <%s>\n      %s\n", r.addr, oneLine(r.err))
	}
	if d.kind == dsnFailed {
		return fmt.Sprintf(`Đây là thông báo tự động của máy chủ thư %[1]s.

Thư của bạn gửi lúc %[2]s, tiêu đề "%[3]s", KHÔNG THỂ chuyển đến
những người nhận dưới đây. Máy chủ đã ngừng gửi lại thư này.
Phần đầu của thư gốc được đính kèm.

%[4]s
______________________________________________________________________
This is an automatic message from the mail server %[1]s.

Your message sent on %[2]s, subject "%[3]s", could NOT be
delivered to the recipients below. The server has stopped retrying it.
The original message's header is attached.

%[4]s`, d.hostname, date, subject, list.String())
	}
	return fmt.Sprintf(`Đây là thông báo tự động của máy chủ thư %[1]s.

Thư của bạn gửi lúc %[2]s, tiêu đề "%[3]s", CHƯA chuyển được đến
những người nhận dưới đây. Máy chủ sẽ tiếp tục thử gửi đến %[5]s;
bạn không cần gửi lại.

%[4]s
______________________________________________________________________
This is an automatic message from the mail server %[1]s.

Your message sent on %[2]s, subject "%[3]s", has NOT YET been
delivered to the recipients below. The server will keep trying until
%[5]s; you do not need to send it again.

%[4]s`, d.hostname, date, subject, list.String(), d.until.Format(time.RFC1123Z))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// originalSubjectDate decodes the original's Subject and Date for the human
// part.
func originalSubjectDate(header []byte) (subject, date string) {
	m, err := mail.ReadMessage(bytes.NewReader(header))
	if err != nil {
		return "", ""
	}
	dec := mime.WordDecoder{}
	subject, err = dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		subject = m.Header.Get("Subject")
	}
	return oneLine(subject), m.Header.Get("Date")
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
