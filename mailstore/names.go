package mailstore

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The names an admin gives (domains, the local parts of accounts and
// aliases) are checked here, by the store, so every way in — the CLI, the
// portal, an import — refuses the same ones with the same message, before
// anything is written.
//
// A domain is a host name: labels of ASCII letters, digits and hyphens (an
// internationalized domain in its xn-- form), 1–63 octets each, no hyphen
// at either end, at most 253 octets in all.
//
// A local part is RFC 5321's dot-string: atoms joined by single dots, at
// most 64 octets. An atom's characters are ASCII letters and digits, the
// RFC 5322 atext symbols ! # $ % & ' * + - = ? ^ _ ` { | } ~ (not '/':
// no mailbox needs it and a path would read it), and, for RFC 6531 UTF-8
// addresses, letters, digits and combining marks of other alphabets — in
// NFC, and all letters of one script. "nguyễn.văn.a" is Latin throughout
// and fine; "аdmin" with a Cyrillic а looks like "admin" and is refused.

// CheckDomain reports whether name is a valid domain name to host.
func CheckDomain(name string) error {
	name = normAddr(name)
	if name == "" {
		return invalidf("empty domain name")
	}
	if len(name) > 253 {
		return invalidf("domain %q is longer than 253 characters", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			if c >= utf8.RuneSelf {
				return invalidf("domain %q is not a valid internationalized domain name (IDNA 2008)", name)
			}
			return invalidf("domain %q contains %q; a domain has only letters, digits, '-' and '.'", name, c)
		}
	}
	for _, label := range strings.Split(name, ".") {
		switch {
		case label == "":
			return invalidf("domain %q has an empty label (a leading, trailing or double dot)", name)
		case len(label) > 63:
			return invalidf("domain %q has a label longer than 63 characters", name)
		case label[0] == '-' || label[len(label)-1] == '-':
			return invalidf("domain %q has a label that starts or ends with '-'", name)
		}
	}
	return nil
}

// CheckAddress checks an address given for an account or an alias: a local
// part as described above at a valid domain.
func CheckAddress(address string) error {
	local, domain, err := SplitAddress(address)
	if err != nil {
		return err
	}
	if err := CheckDomain(domain); err != nil {
		return err
	}
	return CheckLocalPart(local)
}

// invalid is an error naming what is wrong with a name; errors.Is finds
// ErrInvalid in it, and its message is only what is wrong.
type invalid struct{ msg string }

func (e *invalid) Error() string { return e.msg }
func (e *invalid) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalid{fmt.Sprintf(format, args...)}
}

// atext are the ASCII characters an atom may have besides letters and digits.
const atext = "!#$%&'*+-=?^_`{|}~"

// CheckLocalPart reports whether local is a valid local part for an account
// or alias.
func CheckLocalPart(local string) error {
	switch {
	case local == "":
		return invalidf("empty local part")
	case len(local) > 64:
		return invalidf("local part %q is longer than 64 octets", local)
	case !utf8.ValidString(local):
		return invalidf("local part %q is not valid UTF-8", local)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalidf("local part %q: a dot may not start or end it or follow another dot", local)
	case !norm.NFC.IsNormalString(local):
		return invalidf("local part %q is not in Unicode NFC (composed) form; type it with precomposed letters", local)
	}
	var script *unicode.RangeTable
	var scriptName string
	var first rune
	for _, r := range local {
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || strings.ContainsRune(atext, r)):
		case r < utf8.RuneSelf:
			return invalidf("local part %q contains %q; use letters, digits and . _ - +", local, r)
		case unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
		case !unicode.IsLetter(r):
			return invalidf("local part %q contains %q (U+%04X), which is not a letter or digit", local, r, r)
		}
		if !unicode.IsLetter(r) {
			continue
		}
		name, table := scriptOf(r)
		if script == nil {
			script, scriptName, first = table, name, r
			continue
		}
		if table != script {
			return invalidf("local part %q mixes %s (%q) and %s (%q, U+%04X) letters; an address that looks like another is refused",
				local, scriptName, first, name, r, r)
		}
	}
	return nil
}

// scriptOf returns the Unicode script of a letter.
func scriptOf(r rune) (string, *unicode.RangeTable) {
	if unicode.Is(unicode.Latin, r) {
		return "Latin", unicode.Latin // the common case, first
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name, table
		}
	}
	return "unknown", nil
}
