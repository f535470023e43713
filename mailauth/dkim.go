// Package mailauth signs outbound mail with DKIM and checks inbound mail with
// DKIM, SPF and DMARC (RFC 6376, 7208, 7489), recording the outcome in an
// Authentication-Results header (RFC 8601). DNS comes through a
// resolve.Resolver, so tests inject answers and a dead resolver yields
// temperror rather than a stalled SMTP session.
package mailauth

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"sealmail/config"
)

// DefaultSelector is the DKIM selector keygen uses unless told otherwise.
const DefaultSelector = "sealmail"

// KeyPath returns where the key of domain and selector lives under dir.
func KeyPath(dir, domain, selector string) string {
	return filepath.Join(dir, strings.ToLower(domain)+"."+selector+".key")
}

// GenerateKey creates a 2048-bit RSA DKIM key for domain under dir (mode 0600,
// refusing to overwrite one) and returns the DNS TXT record that publishes it:
// its name (selector._domainkey.domain) and value.
func GenerateKey(dir, domain, selector string) (name, value string, err error) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if domain == "" || strings.ContainsAny(domain, "/@ ") {
		return "", "", fmt.Errorf("dkim: invalid domain %q", domain)
	}
	if selector == "" || strings.ContainsAny(selector, "./@ ") {
		// A dot would make DOMAIN.SELECTOR.key ambiguous.
		return "", "", fmt.Errorf("dkim: invalid selector %q (letters, digits and hyphens)", selector)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("dkim: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("dkim: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("dkim: %w", err)
	}
	path := KeyPath(dir, domain, selector)
	if err := config.WriteNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", fmt.Errorf("dkim: %w", err)
	}
	return selector + "._domainkey." + domain, publicRecord(key.Public()), nil
}

func publicRecord(pub crypto.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

// ZoneRecord formats a TXT record for a zone file, splitting the value into
// the 255-byte strings DNS allows.
func ZoneRecord(name, value string) string {
	return name + ". IN TXT " + TXTStrings(value)
}

// TXTStrings writes a TXT record's value as a zone file wants it: quoted
// strings of at most 255 bytes (RFC 1035), in parentheses.
func TXTStrings(value string) string {
	var b strings.Builder
	b.WriteString("(")
	for len(value) > 0 {
		n := min(len(value), 255)
		fmt.Fprintf(&b, " %q", value[:n])
		value = value[n:]
	}
	b.WriteString(" )")
	return b.String()
}

// Signer signs outbound mail with the keys under Dir, named
// DOMAIN.SELECTOR.key. A key added while the server runs is used from the next
// message on; with several keys for a domain the newest file wins, so rotating
// is: keygen a new selector, publish it, wait for DNS, remove the old file.
type Signer struct {
	Dir string

	mu    sync.Mutex
	cache map[string]cachedKey // by path
}

type cachedKey struct {
	mod    time.Time
	signer crypto.Signer
}

// signedHeaders are the fields a signature covers, those that say who wrote
// what to whom, and Auto-Submitted (an out-of-office reply's mark, which
// keeps other responders from answering it: RFC 3834 5).
var signedHeaders = []string{"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted"}

// Signature returns the DKIM-Signature field (with its CRLF) to put before
// the message that r reads whole, for the domain of its From address, or ""
// when there is no key for that domain. header holds the start of the
// message, its header at least (the fields to sign are chosen from it). The
// message is read as a stream: a large one costs no memory.
func (s *Signer) Signature(header []byte, r io.Reader) (string, error) {
	domain := fromDomain(header)
	if domain == "" {
		return "", nil
	}
	selector, key, err := s.key(domain)
	if err != nil || key == nil {
		return "", err
	}
	ds, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 domain,
		Selector:               selector,
		Signer:                 key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             presentHeaders(header),
	})
	if err == nil {
		if _, err = io.Copy(ds, r); err != nil {
			ds.Close()
		} else {
			err = ds.Close()
		}
	}
	if err != nil {
		return "", fmt.Errorf("dkim: sign for %s: %w", domain, err)
	}
	return ds.Signature(), nil
}

// presentHeaders picks the signed fields the message has (From always: the
// RFC requires it).
func presentHeaders(msg []byte) []string {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	keys := []string{"From"}
	if err != nil {
		return keys
	}
	for _, k := range signedHeaders[1:] {
		if _, ok := m.Header[textproto.CanonicalMIMEHeaderKey(k)]; ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// key finds the newest key for domain.
func (s *Signer) key(domain string) (string, crypto.Signer, error) {
	files, err := keyFiles(s.Dir, domain)
	if err != nil {
		return "", nil, nil
	}
	var best keyFile
	var bestMod time.Time
	for _, f := range files {
		fi, err := os.Stat(f.path)
		if err == nil && (best.path == "" || fi.ModTime().After(bestMod)) {
			best, bestMod = f, fi.ModTime()
		}
	}
	if best.path == "" {
		return "", nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[best.path]; ok && c.mod.Equal(bestMod) {
		return best.selector, c.signer, nil
	}
	k, err := loadKey(best.path)
	if err != nil {
		return "", nil, err
	}
	if s.cache == nil {
		s.cache = map[string]cachedKey{}
	}
	s.cache[best.path] = cachedKey{bestMod, k}
	return best.selector, k, nil
}

type keyFile struct{ path, selector string }

// keyFiles lists the keys of domain under dir (not those of its subdomains).
func keyFiles(dir, domain string) ([]keyFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, globEscape(domain)+".*.key"))
	if err != nil {
		return nil, err
	}
	var fs []keyFile
	for _, p := range paths {
		sel := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), domain+"."), ".key")
		if !strings.Contains(sel, ".") {
			fs = append(fs, keyFile{p, sel})
		}
	}
	return fs, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

func loadKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("dkim: %s: no PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		if rk, err2 := x509.ParsePKCS1PrivateKey(blk.Bytes); err2 == nil {
			return rk, nil
		}
		return nil, fmt.Errorf("dkim: %s: %w", path, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dkim: %s: unsupported key type %T", path, k)
	}
	return signer, nil
}

// fromDomain returns the lower-cased domain of the message's single From
// address, or "" when there is not exactly one.
func fromDomain(msg []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil || len(m.Header["From"]) != 1 {
		return ""
	}
	addrs, err := m.Header.AddressList("From")
	if err != nil || len(addrs) != 1 {
		return ""
	}
	return addrDomain(addrs[0].Address)
}

func addrDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

// PublicRecords returns the DNS TXT record (name and value) of every DKIM key
// of domain under dir, so that all of them are published during a rotation.
func PublicRecords(dir, domain string) (names, values []string, err error) {
	domain = strings.ToLower(domain)
	files, err := keyFiles(dir, domain)
	if err != nil {
		return nil, nil, fmt.Errorf("dkim: %w", err)
	}
	for _, f := range files {
		k, err := loadKey(f.path)
		if err != nil {
			return nil, nil, err
		}
		names = append(names, f.selector+"._domainkey."+domain)
		values = append(values, publicRecord(k.Public()))
	}
	return names, values, nil
}
