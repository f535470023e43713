package mailauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"

	"sealmail/resolve"
)

// Verdict is what to do with a checked message.
type Verdict int

const (
	Accept     Verdict = iota
	Quarantine         // deliver to the recipient's Junk
	Reject
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Quarantine:
		return "quarantine"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Checker checks inbound mail from other servers.
type Checker struct {
	// Resolver answers the checks' lookups; nil or resolve.Off records
	// every result as none (closed networks without DNS).
	Resolver resolve.Resolver
	// Hostname is the authserv-id of the Authentication-Results header.
	Hostname string
	// Policy is relay.dmarc-policy: "follow" (default) applies the sender
	// domain's DMARC policy, "quarantine" quarantines every DMARC failure,
	// "none" only records results.
	Policy string
	// Timeout bounds the whole check (default 10s); lookups not answered by
	// then count as temperror and the mail flows.
	Timeout time.Duration
}

// Check verifies DKIM, SPF and DMARC of a message received from ip, which said
// helo and MAIL FROM:<mailFrom>. It returns a complete Authentication-Results
// header field (without CRLF), the verdict, and a reason for a verdict other
// than Accept. It reads the message from msg as it goes: a large message is
// never in memory whole.
func (c *Checker) Check(ctx context.Context, ip net.IP, helo, mailFrom string, msg io.Reader) (header string, v Verdict, reason string) {
	// The header is read for the From: domain, and again by DKIM with the
	// rest: what the first reading took is kept for the second.
	var head bytes.Buffer
	from, fromErr := headerFrom(io.LimitReader(io.TeeReader(msg, &head), maxHeader))
	msg = io.MultiReader(&head, msg)
	if _, off := c.Resolver.(resolve.Off); off || c.Resolver == nil {
		res := []authres.Result{
			&authres.DKIMResult{Value: authres.ResultNone},
			&authres.SPFResult{Value: authres.ResultNone, From: mailFrom, Helo: helo},
			&authres.DMARCResult{Value: authres.ResultNone, From: from},
		}
		return c.format(res), Accept, ""
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// DKIM and SPF are independent: run them side by side so a slow DNS
	// costs one timeout, not two.
	spfc := make(chan *authres.SPFResult, 1)
	go func() {
		v, why := spfCheck(ctx, c.Resolver, ip, helo, mailFrom)
		spfc <- &authres.SPFResult{Value: v, Reason: why, From: mailFrom, Helo: helo}
	}()
	dkims := c.verifyDKIM(ctx, msg)
	spf := <-spfc

	res := make([]authres.Result, 0, len(dkims)+2)
	for _, d := range dkims {
		res = append(res, d)
	}
	dm, policy := c.dmarc(ctx, from, fromErr, mailFrom, helo, spf, dkims)
	res = append(res, spf, dm)
	header = c.format(res)
	if dm.Value != authres.ResultFail {
		return header, Accept, ""
	}
	reason = fmt.Sprintf("DMARC failure for %s (policy %s)", from, policy)
	switch c.Policy {
	case "none":
		return header, Accept, ""
	case "quarantine":
		return header, Quarantine, reason
	}
	switch policy {
	case dmarc.PolicyReject:
		return header, Reject, reason
	case dmarc.PolicyQuarantine:
		return header, Quarantine, reason
	}
	return header, Accept, ""
}

func (c *Checker) format(res []authres.Result) string {
	return "Authentication-Results: " + authres.Format(c.Hostname, res)
}

// lookupTXT adapts the resolver to go-msgauth, whose callers tell temporary
// failures by net.Error.Temporary.
func (c *Checker) lookupTXT(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		txt, err := c.Resolver.LookupTXT(ctx, name)
		if err != nil && !resolve.IsNotFound(err) {
			return nil, &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
		}
		return txt, err
	}
}

func (c *Checker) verifyDKIM(ctx context.Context, msg io.Reader) []*authres.DKIMResult {
	vs, err := dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{LookupTXT: c.lookupTXT(ctx), MaxVerifications: 5})
	if err != nil && len(vs) == 0 {
		return []*authres.DKIMResult{{Value: authres.ResultPermError, Reason: err.Error()}}
	}
	if len(vs) == 0 {
		return []*authres.DKIMResult{{Value: authres.ResultNone}}
	}
	out := make([]*authres.DKIMResult, 0, len(vs))
	for _, v := range vs {
		r := &authres.DKIMResult{Value: authres.ResultPass, Domain: v.Domain, Identifier: v.Identifier}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			r.Value, r.Reason = authres.ResultTempError, v.Err.Error()
		case dkim.IsPermFail(v.Err):
			r.Value, r.Reason = authres.ResultPermError, v.Err.Error()
		default:
			r.Value, r.Reason = authres.ResultFail, v.Err.Error()
		}
		out = append(out, r)
	}
	return out
}

// dmarc evaluates the From domain's DMARC record against the SPF and DKIM
// results and returns the result and the policy that applies on failure.
func (c *Checker) dmarc(ctx context.Context, from string, fromErr error, mailFrom, helo string, spf *authres.SPFResult, dkims []*authres.DKIMResult) (*authres.DMARCResult, dmarc.Policy) {
	if fromErr != nil {
		return &authres.DMARCResult{Value: authres.ResultPermError, Reason: fromErr.Error()}, dmarc.PolicyNone
	}
	org := orgDomain(from)
	opts := &dmarc.LookupOptions{LookupTXT: c.lookupTXT(ctx)}
	rec, err := dmarc.LookupWithOptions(from, opts)
	atOrg := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		rec, err = dmarc.LookupWithOptions(org, opts)
		atOrg = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		return &authres.DMARCResult{Value: authres.ResultNone, From: from}, dmarc.PolicyNone
	case dmarc.IsTempFail(err):
		return &authres.DMARCResult{Value: authres.ResultTempError, Reason: err.Error(), From: from}, dmarc.PolicyNone
	case err != nil:
		return &authres.DMARCResult{Value: authres.ResultPermError, Reason: err.Error(), From: from}, dmarc.PolicyNone
	}
	aligned := func(d string, mode dmarc.AlignmentMode) bool {
		d = strings.ToLower(d)
		if mode == dmarc.AlignmentStrict {
			return d == from
		}
		return orgDomain(d) == org
	}
	pass := false
	for _, d := range dkims {
		if d.Value == authres.ResultPass && aligned(d.Domain, rec.DKIMAlignment) {
			pass = true
		}
	}
	spfDomain := addrDomain(mailFrom)
	if spfDomain == "" {
		spfDomain = strings.ToLower(helo)
	}
	if spf.Value == authres.ResultPass && aligned(spfDomain, rec.SPFAlignment) {
		pass = true
	}
	if pass {
		return &authres.DMARCResult{Value: authres.ResultPass, From: from}, dmarc.PolicyNone
	}
	policy := rec.Policy
	if atOrg && rec.SubdomainPolicy != "" {
		policy = rec.SubdomainPolicy
	}
	// pct: the policy applies to that share of failing mail, the rest gets the next milder one.
	if rec.Percent != nil && rand.IntN(100) >= *rec.Percent {
		switch policy {
		case dmarc.PolicyReject:
			policy = dmarc.PolicyQuarantine
		case dmarc.PolicyQuarantine:
			policy = dmarc.PolicyNone
		}
	}
	return &authres.DMARCResult{Value: authres.ResultFail, Reason: "policy " + string(policy), From: from}, policy
}

// headerFrom returns the domain of the message's one From address.
func headerFrom(msg io.Reader) (string, error) {
	m, err := mail.ReadMessage(msg)
	if err != nil {
		return "", fmt.Errorf("unreadable header: %w", err)
	}
	if n := len(m.Header["From"]); n != 1 {
		return "", fmt.Errorf("%d From fields", n)
	}
	addrs, err := m.Header.AddressList("From")
	if err != nil || len(addrs) != 1 {
		return "", errors.New("From is not a single address")
	}
	d := addrDomain(addrs[0].Address)
	if d == "" {
		return "", errors.New("From has no domain")
	}
	return d, nil
}

// maxHeader bounds the header read for the From: field; a longer one is
// unreadable, as the SMTP server refuses it anyway.
const maxHeader = 1 << 20

// twoLevelSuffixes are public suffixes of two labels under which
// organisations register: Vietnam's and a few common others. Without the full
// public suffix list this is what makes a.b.gov.vn's organisation b.gov.vn.
var twoLevelSuffixes = map[string]bool{
	"gov.vn": true, "com.vn": true, "net.vn": true, "org.vn": true, "edu.vn": true, "ac.vn": true,
	"info.vn": true, "biz.vn": true, "name.vn": true, "pro.vn": true, "health.vn": true, "int.vn": true,
	"co.uk": true, "org.uk": true, "gov.uk": true, "ac.uk": true, "com.au": true, "co.jp": true, "com.cn": true,
}

// orgDomain approximates the RFC 7489 organizational domain.
func orgDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	labels := strings.Split(d, ".")
	n := 2
	if len(labels) >= 3 && twoLevelSuffixes[strings.Join(labels[len(labels)-2:], ".")] {
		n = 3
	}
	if len(labels) <= n {
		return d
	}
	return strings.Join(labels[len(labels)-n:], ".")
}
