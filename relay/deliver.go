package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"sealmail/mailstore"
)

// result is the outcome for one recipient of one attempt.
type result struct {
	sent bool
	perm bool   // a permanent failure (5xx)
	msg  string // the server's answer or the local error
}

// transaction sends m to rcpts over route: one SMTP transaction with the
// first host that takes it. Hosts that cannot be reached, refuse the
// connection with 4xx or fail TLS are skipped for the next. An error is the
// content's (contentError): no host could be sent it.
func (q *Queue) transaction(ctx context.Context, r *route, from string, rcpts []string, m *outbound) (map[string]result, error) {
	var last string
	for _, h := range r.hops {
		res, err := q.tryHop(ctx, r, h, from, rcpts, m)
		if err == nil {
			return res, nil
		}
		if ce := (*contentError)(nil); errors.As(err, &ce) {
			return nil, ce.err
		}
		last = fmt.Sprintf("%s (%s): %v", h.name, h.addr, err)
		q.logger().Debug("relay: host failed", "host", h.name, "addr", h.addr, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	out := make(map[string]result, len(rcpts))
	for _, rc := range rcpts {
		out[rc] = result{msg: last}
	}
	return out, nil
}

// hopError is a failure before any recipient was decided: try the next host.
type hopError struct{ err error }

func (e hopError) Error() string { return e.err.Error() }

// tryHop runs one SMTP session. A nil error means every recipient has a
// result; an error means the host did not decide any and the next may be tried.
func (q *Queue) tryHop(ctx context.Context, r *route, h hop, from string, rcpts []string, m *outbound) (map[string]result, error) {
	d := net.Dialer{Timeout: q.dialTimeout()}
	conn, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	c, err := q.open(ctx, conn, r, h)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.CommandTimeout = q.commandTimeout()
	c.SubmissionTimeout = q.commandTimeout()

	out := make(map[string]result, len(rcpts))
	// Domains go in A-labels, which every server understands: SMTPUTF8 is
	// then needed only for UTF-8 local parts (RFC 6531 section 3.2).
	wire := make([]string, len(rcpts))
	for i, rc := range rcpts {
		wire[i] = mailstore.ASCIIDomain(rc)
	}
	from = mailstore.ASCIIDomain(from)
	opts := &smtp.MailOptions{Size: m.size(), UTF8: needsUTF8(from, wire)}
	if err := c.Mail(from, opts); err != nil {
		if se := smtpErr(err); se != nil && se.Code >= 500 {
			for _, rc := range rcpts {
				out[rc] = result{perm: true, msg: describe(h, "MAIL FROM", err)}
			}
			c.Quit()
			return out, nil
		}
		return nil, err
	}
	var accepted []string
	for i, rc := range rcpts {
		err := c.Rcpt(wire[i], nil)
		if err == nil {
			accepted = append(accepted, rc)
			continue
		}
		se := smtpErr(err)
		if se == nil {
			return nil, err // connection trouble: nothing was decided
		}
		out[rc] = result{perm: se.Code >= 500, msg: describe(h, "RCPT TO", err)}
	}
	if len(accepted) == 0 {
		c.Quit()
		return out, nil
	}
	w, err := c.Data()
	if err != nil {
		if se := smtpErr(err); se != nil {
			for _, rc := range accepted {
				out[rc] = result{perm: se.Code >= 500, msg: describe(h, "DATA", err)}
			}
			return out, nil
		}
		return nil, err
	}
	if err := m.writeTo(ctx, w); err != nil {
		// Ending here leaves the data unterminated: closing the connection
		// makes the server drop it.
		return nil, err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		se := smtpErr(err)
		if se == nil {
			// The connection broke after the data: whether the server took
			// the message is unknown, and retrying risks a duplicate, which
			// beats a loss.
			return nil, err
		}
		for _, rc := range accepted {
			out[rc] = result{perm: se.Code >= 500, msg: describe(h, "end of data", err)}
		}
		return out, nil
	}
	for _, rc := range accepted {
		out[rc] = result{sent: true, msg: fmt.Sprintf("%s (%s) said: 250 %s", h.name, h.addr, firstLine(resp.StatusText))}
	}
	c.Quit()
	return out, nil
}

func describe(h hop, stage string, err error) string {
	if se := smtpErr(err); se != nil {
		code := fmt.Sprint(se.Code)
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
			code += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return fmt.Sprintf("%s (%s) said after %s: %s %s", h.name, h.addr, stage, code, firstLine(se.Message))
	}
	return fmt.Sprintf("%s (%s) after %s: %v", h.name, h.addr, stage, err)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

func smtpErr(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return nil
}

func needsUTF8(from string, rcpts []string) bool {
	for _, s := range append([]string{from}, rcpts...) {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}

// open greets the server and negotiates STARTTLS: always when the server offers
// it, and for a peer as a condition of going on. go-smtp's client can only
// STARTTLS as its first act, before learning whether the server offers it, so
// the first EHLO is done here and the client is handed the (possibly
// encrypted) connection with the greeting replayed.
func (q *Queue) open(ctx context.Context, conn net.Conn, r *route, h hop) (*smtp.Client, error) {
	conn.SetDeadline(time.Now().Add(q.commandTimeout()))
	tp := textproto.NewConn(conn)
	_, greeting, err := tp.ReadResponse(220)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	id, err := tp.Cmd("EHLO %s", q.Hostname)
	if err != nil {
		return nil, err
	}
	tp.StartResponse(id)
	_, ext, err := tp.ReadResponse(250)
	tp.EndResponse(id)
	if err != nil {
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	starttls := false
	for _, l := range strings.Split(ext, "\n")[1:] {
		if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
			starttls = true
		}
	}
	var c net.Conn = conn
	switch {
	case starttls:
		id, err := tp.Cmd("STARTTLS")
		if err != nil {
			return nil, err
		}
		tp.StartResponse(id)
		_, _, err = tp.ReadResponse(220)
		tp.EndResponse(id)
		if err != nil {
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
		cfg := r.tls
		if cfg == nil {
			// Opportunistic: encryption against passive listening; MX
			// certificates are not verifiable without DANE or MTA-STS.
			cfg = &tls.Config{InsecureSkipVerify: true}
		}
		cfg = cfg.Clone()
		cfg.ServerName = h.name
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		c = tc
	case r.tls != nil:
		return nil, fmt.Errorf("peer %s does not offer STARTTLS; not sending in clear", r.peer)
	}
	conn.SetDeadline(time.Time{})
	client := smtp.NewClient(&replayConn{Conn: c, r: io.MultiReader(strings.NewReader("220 "+firstLine(greeting)+"\r\n"), c)})
	if err := client.Hello(q.Hostname); err != nil {
		client.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	return client, nil
}

// replayConn reads from r, which starts with what was already read from Conn.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }
