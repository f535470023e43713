package mailauth

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"sealmail/resolve"
)

// RFC 7208 section 4.6.4 limits.
const (
	spfMaxLookups = 10
	spfMaxVoids   = 2
	spfMaxMXAddrs = 10
)

// spfCheck evaluates check_host() for ip and the sender (or postmaster@helo
// for the null sender), returning the result and a short reason.
func spfCheck(ctx context.Context, r resolve.Resolver, ip net.IP, helo, sender string) (authres.ResultValue, string) {
	domain := addrDomain(sender)
	if sender == "" || domain == "" {
		domain = strings.ToLower(helo)
		sender = "postmaster@" + domain
	}
	if domain == "" {
		return authres.ResultNone, "no domain to check"
	}
	s := &spfState{ctx: ctx, r: r, ip: ip, helo: helo, sender: sender}
	return s.check(domain, 0)
}

type spfState struct {
	ctx            context.Context
	r              resolve.Resolver
	ip             net.IP
	helo, sender   string
	lookups, voids int
}

// spfError carries a permerror or temperror out of term evaluation.
type spfError struct {
	v      authres.ResultValue
	reason string
}

func (s *spfState) check(domain string, depth int) (authres.ResultValue, string) {
	if depth > spfMaxLookups {
		return authres.ResultPermError, "include loop"
	}
	txts, err := s.r.LookupTXT(s.ctx, domain)
	if err != nil && !resolve.IsNotFound(err) {
		return authres.ResultTempError, "txt lookup for " + domain + ": " + err.Error()
	}
	var rec string
	n := 0
	for _, t := range txts {
		if l := strings.ToLower(t); l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ") {
			rec, n = t, n+1
		}
	}
	switch {
	case n == 0:
		return authres.ResultNone, "no SPF record for " + domain
	case n > 1:
		return authres.ResultPermError, "several SPF records for " + domain
	}
	var redirect string
	for _, term := range strings.Fields(rec)[1:] {
		if name, val, ok := strings.Cut(term, "="); ok && !strings.ContainsAny(name, ":/") {
			if strings.EqualFold(name, "redirect") {
				redirect = val
			}
			continue // exp= and unknown modifiers are ignored
		}
		var q authres.ResultValue = authres.ResultPass
		switch term[0] {
		case '+':
			term = term[1:]
		case '-':
			q, term = authres.ResultFail, term[1:]
		case '~':
			q, term = authres.ResultSoftFail, term[1:]
		case '?':
			q, term = authres.ResultNeutral, term[1:]
		}
		match, e := s.mechanism(domain, term, depth)
		if e != nil {
			return e.v, e.reason
		}
		if match {
			return q, fmt.Sprintf("%s matched %s in %s", s.ip, term, domain)
		}
	}
	if redirect != "" {
		target, e := s.expand(redirect, domain)
		if e != nil {
			return e.v, e.reason
		}
		if e := s.count(); e != nil {
			return e.v, e.reason
		}
		v, reason := s.check(target, depth+1)
		if v == authres.ResultNone {
			return authres.ResultPermError, "redirect to " + target + " without SPF record"
		}
		return v, reason
	}
	return authres.ResultNeutral, "no mechanism matched in " + domain
}

func (s *spfState) count() *spfError {
	s.lookups++
	if s.lookups > spfMaxLookups {
		return &spfError{authres.ResultPermError, "too many DNS lookups"}
	}
	return nil
}

// void counts a lookup that found nothing.
func (s *spfState) void(err error) *spfError {
	if err == nil {
		return nil
	}
	if !resolve.IsNotFound(err) {
		return &spfError{authres.ResultTempError, err.Error()}
	}
	s.voids++
	if s.voids > spfMaxVoids {
		return &spfError{authres.ResultPermError, "too many void DNS lookups"}
	}
	return nil
}

func (s *spfState) mechanism(domain, term string, depth int) (bool, *spfError) {
	name, arg, _ := strings.Cut(term, ":")
	name = strings.ToLower(name)
	// a and mx carry their CIDR lengths after the name when there is no domain.
	cidrPart := ""
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name, cidrPart = name[:i], name[i:]
	}
	switch name {
	case "all":
		return true, nil
	case "ip4", "ip6":
		if !strings.Contains(arg, "/") {
			if name == "ip4" {
				arg += "/32"
			} else {
				arg += "/128"
			}
		}
		_, n, err := net.ParseCIDR(arg)
		if err != nil {
			return false, &spfError{authres.ResultPermError, "bad " + term}
		}
		return n.Contains(s.ip), nil
	case "include":
		if e := s.count(); e != nil {
			return false, e
		}
		target, e := s.expand(arg, domain)
		if e != nil {
			return false, e
		}
		switch v, reason := s.check(target, depth+1); v {
		case authres.ResultPass:
			return true, nil
		case authres.ResultFail, authres.ResultSoftFail, authres.ResultNeutral:
			return false, nil
		case authres.ResultTempError:
			return false, &spfError{v, reason}
		default:
			return false, &spfError{authres.ResultPermError, "include:" + target + ": " + reason}
		}
	case "a", "mx":
		if e := s.count(); e != nil {
			return false, e
		}
		spec := arg
		if i := strings.IndexByte(spec, '/'); i >= 0 {
			spec, cidrPart = spec[:i], spec[i:]
		}
		target := domain
		if spec != "" {
			var e *spfError
			if target, e = s.expand(spec, domain); e != nil {
				return false, e
			}
		}
		v4, v6, ok := parseDualCIDR(cidrPart)
		if !ok {
			return false, &spfError{authres.ResultPermError, "bad " + term}
		}
		hosts := []string{target}
		if name == "mx" {
			mxs, err := s.r.LookupMX(s.ctx, target)
			if e := s.void(err); e != nil {
				return false, e
			}
			if len(mxs) > spfMaxMXAddrs {
				return false, &spfError{authres.ResultPermError, "too many MX records for " + target}
			}
			hosts = hosts[:0]
			for _, mx := range mxs {
				hosts = append(hosts, mx.Host)
			}
		}
		for _, h := range hosts {
			ips, err := s.r.LookupIP(s.ctx, h)
			if e := s.void(err); e != nil {
				return false, e
			}
			for _, ip := range ips {
				if ipMatch(s.ip, ip, v4, v6) {
					return true, nil
				}
			}
		}
		return false, nil
	case "exists":
		if e := s.count(); e != nil {
			return false, e
		}
		target, e := s.expand(arg, domain)
		if e != nil {
			return false, e
		}
		ips, err := s.r.LookupIP(s.ctx, target)
		if e := s.void(err); e != nil {
			return false, e
		}
		return len(ips) > 0, nil
	case "ptr":
		// Deprecated (RFC 7208 5.5) and needing reverse lookups: counted, never matched.
		return false, s.count()
	}
	return false, &spfError{authres.ResultPermError, "unknown mechanism " + term}
}

func parseDualCIDR(s string) (v4, v6 int, ok bool) {
	v4, v6 = 32, 128
	if s == "" {
		return v4, v6, true
	}
	a, b, dual := strings.Cut(strings.TrimPrefix(s, "/"), "//")
	if strings.HasPrefix(s, "//") {
		a, b, dual = "", strings.TrimPrefix(s, "//"), true
	}
	var err error
	if a != "" {
		if v4, err = strconv.Atoi(a); err != nil || v4 < 0 || v4 > 32 {
			return 0, 0, false
		}
	}
	if dual {
		if v6, err = strconv.Atoi(b); err != nil || v6 < 0 || v6 > 128 {
			return 0, 0, false
		}
	}
	return v4, v6, true
}

func ipMatch(client, ip net.IP, v4, v6 int) bool {
	if c4, i4 := client.To4(), ip.To4(); c4 != nil || i4 != nil {
		if c4 == nil || i4 == nil {
			return false
		}
		m := net.CIDRMask(v4, 32)
		return c4.Mask(m).Equal(i4.Mask(m))
	}
	m := net.CIDRMask(v6, 128)
	return client.Mask(m).Equal(ip.Mask(m))
}

// expand applies SPF macros (RFC 7208 section 7) to a domain-spec.
func (s *spfState) expand(spec, domain string) (string, *spfError) {
	if !strings.Contains(spec, "%") {
		return spec, nil
	}
	local, _, _ := strings.Cut(s.sender, "@")
	var b strings.Builder
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(spec) {
			return "", &spfError{authres.ResultPermError, "bad macro in " + spec}
		}
		i++
		switch spec[i] {
		case '%':
			b.WriteByte('%')
			continue
		case '_':
			b.WriteByte(' ')
			continue
		case '-':
			b.WriteString("%20")
			continue
		case '{':
		default:
			return "", &spfError{authres.ResultPermError, "bad macro in " + spec}
		}
		end := strings.IndexByte(spec[i:], '}')
		if end < 2 {
			return "", &spfError{authres.ResultPermError, "bad macro in " + spec}
		}
		m := spec[i+1 : i+end]
		i += end
		var val string
		switch m[0] | 0x20 {
		case 's':
			val = s.sender
		case 'l':
			val = local
		case 'o':
			val = addrDomain(s.sender)
		case 'd':
			val = domain
		case 'i':
			val = macroIP(s.ip)
		case 'h':
			val = s.helo
		case 'v':
			val = "in-addr"
			if s.ip.To4() == nil {
				val = "ip6"
			}
		default:
			return "", &spfError{authres.ResultPermError, "unsupported macro %{" + m + "}"}
		}
		rest := m[1:]
		digits := 0
		for len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
			digits = digits*10 + int(rest[0]-'0')
			rest = rest[1:]
		}
		reverse := false
		if len(rest) > 0 && (rest[0]|0x20) == 'r' {
			reverse, rest = true, rest[1:]
		}
		delims := rest
		if delims == "" {
			delims = "."
		}
		parts := strings.FieldsFunc(val, func(r rune) bool { return strings.ContainsRune(delims, r) })
		if reverse {
			for a, z := 0, len(parts)-1; a < z; a, z = a+1, z-1 {
				parts[a], parts[z] = parts[z], parts[a]
			}
		}
		if digits > 0 && digits < len(parts) {
			parts = parts[len(parts)-digits:]
		}
		b.WriteString(strings.Join(parts, "."))
	}
	return b.String(), nil
}

// macroIP spells ip as %{i} does: dotted quads, or dotted nibbles for IPv6.
func macroIP(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	const hex = "0123456789abcdef"
	var parts []string
	for _, b := range ip.To16() {
		parts = append(parts, string(hex[b>>4]), string(hex[b&15]))
	}
	return strings.Join(parts, ".")
}
