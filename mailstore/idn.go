package mailstore

import (
	"strings"

	"golang.org/x/net/idna"
)

// Internationalised domain names (RFC 5890) reach the store spelled two ways:
// in Unicode ("sở-tc.việt.vn", from an SMTPUTF8 client or an admin typing
// Vietnamese) and in punycode ("xn--s-tc-...", from DNS, certificates and
// clients without SMTPUTF8). The store keeps and looks up the punycode
// (A-label) form, the one DNS, DKIM and TLS need, so both spellings name one
// domain and one account. Local parts stay as they are: UTF-8 local parts
// (RFC 6531) have no other spelling.

// asciiDomain returns d, lower-cased, in A-labels. A name IDNA refuses is
// returned lower-cased as it is, for the caller's own checks to judge.
func asciiDomain(d string) string {
	d = strings.ToLower(d)
	if isASCII(d) {
		return d
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return d
	}
	return a
}

// ASCIIDomain returns addr with its domain in A-labels and its local part
// untouched: how to name a recipient to a server without SMTPUTF8, or to DNS.
func ASCIIDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	return addr[:i+1] + asciiDomain(addr[i+1:])
}

// DomainName returns the name the store keeps for the domain d: trimmed,
// lower-cased, in A-labels. The DKIM key and DNS records use it too.
func DomainName(d string) string { return asciiDomain(strings.TrimSpace(d)) }

// UnicodeDomain returns d in Unicode (U-labels), for people to read.
func UnicodeDomain(d string) string {
	u, err := idna.Lookup.ToUnicode(d)
	if err != nil {
		return d
	}
	return u
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
