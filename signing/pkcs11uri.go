package signing

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PKCS11URI names a private key on a token (RFC 7512): the token by
// label, serial or slot, the key by label (object) and/or id, the module
// that drives the token and where its PIN is kept.
type PKCS11URI struct {
	Token  string // token label
	Serial string // token serial number
	Slot   *uint  // slot-id
	Object string // the key's label (CKA_LABEL)
	ID     []byte // the key's CKA_ID
	// Module is the PKCS#11 library's path (query attribute module-path).
	Module string
	// PINFile is the file whose first line is the user PIN (query
	// attribute pin-source). The PIN itself is never stored in the URI.
	PINFile string
}

// ParsePKCS11URI reads a PKCS#11 URI. Attributes that would select a key
// other than the one meant (type other than private, unknown names other
// than x-...) are refused, and so is pin-value: a PIN belongs in a file of
// mode 0600, not in a command line or a configuration file.
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, fmt.Errorf("signing: %q is not a PKCS#11 URI (pkcs11:token=...;object=...)", s)
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{}
	for _, attr := range splitNonEmpty(path, ";") {
		k, v, err := uriAttr(attr)
		if err != nil {
			return nil, err
		}
		switch k {
		case "token":
			u.Token = v
		case "serial":
			u.Serial = v
		case "slot-id":
			n, err := strconv.ParseUint(v, 10, 0)
			if err != nil {
				return nil, fmt.Errorf("signing: PKCS#11 URI: slot-id %q is not a number", v)
			}
			slot := uint(n)
			u.Slot = &slot
		case "object":
			u.Object = v
		case "id":
			u.ID = []byte(v)
		case "type":
			if v != "private" {
				return nil, fmt.Errorf("signing: PKCS#11 URI: type=%s; a seal needs the private key (type=private)", v)
			}
		case "manufacturer", "model", "library-manufacturer", "library-description", "library-version",
			"slot-description", "slot-manufacturer":
			// Descriptive: the token is chosen by label, serial or slot.
		default:
			if !strings.HasPrefix(k, "x-") {
				return nil, fmt.Errorf("signing: PKCS#11 URI: unknown attribute %q", k)
			}
		}
	}
	for _, attr := range splitNonEmpty(query, "&") {
		k, v, err := uriAttr(attr)
		if err != nil {
			return nil, err
		}
		switch k {
		case "module-path":
			u.Module = v
		case "pin-source":
			if p, ok := strings.CutPrefix(v, "file:"); ok {
				v = strings.TrimPrefix(p, "//")
			}
			u.PINFile = v
		case "pin-value":
			return nil, errors.New("signing: PKCS#11 URI: pin-value is not accepted; keep the PIN in a file (--pin-file)")
		case "module-name":
			return nil, errors.New("signing: PKCS#11 URI: give the module's path (module-path=...), not its name")
		default:
			if !strings.HasPrefix(k, "x-") {
				return nil, fmt.Errorf("signing: PKCS#11 URI: unknown query attribute %q", k)
			}
		}
	}
	if u.Token == "" && u.Serial == "" && u.Slot == nil {
		return nil, errors.New("signing: PKCS#11 URI names no token (token=, serial= or slot-id=)")
	}
	if u.Object == "" && len(u.ID) == 0 {
		return nil, errors.New("signing: PKCS#11 URI names no key (object= or id=)")
	}
	return u, nil
}

func splitNonEmpty(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

// uriAttr splits one attribute and percent-decodes its value.
func uriAttr(attr string) (string, string, error) {
	k, v, ok := strings.Cut(attr, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("signing: PKCS#11 URI: %q is not name=value", attr)
	}
	dv, err := url.PathUnescape(v)
	if err != nil {
		return "", "", fmt.Errorf("signing: PKCS#11 URI: %s: %w", k, err)
	}
	return k, dv, nil
}

// String writes u back as a URI, every value percent-encoded.
func (u *PKCS11URI) String() string {
	var path []string
	add := func(k, v string) {
		if v != "" {
			path = append(path, k+"="+escapeURIValue(v))
		}
	}
	add("token", u.Token)
	add("serial", u.Serial)
	if u.Slot != nil {
		add("slot-id", strconv.FormatUint(uint64(*u.Slot), 10))
	}
	add("object", u.Object)
	if len(u.ID) > 0 {
		// Always percent-encoded: ids are binary.
		var b strings.Builder
		for _, c := range u.ID {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
		path = append(path, "id="+b.String())
	}
	path = append(path, "type=private")
	s := "pkcs11:" + strings.Join(path, ";")
	var query []string
	if u.Module != "" {
		query = append(query, "module-path="+escapeURIValue(u.Module))
	}
	if u.PINFile != "" {
		query = append(query, "pin-source=file:"+escapeURIValue(u.PINFile))
	}
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// escapeURIValue percent-encodes all but RFC 7512's unreserved characters
// and the path characters allowed in values.
func escapeURIValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~:[]@!$'()*+,/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ReadPIN reads the PIN from u.PINFile: its first line, without the line end.
func (u *PKCS11URI) ReadPIN() (string, error) {
	if u.PINFile == "" {
		return "", errors.New("signing: no PIN file for the token (--pin-file, or pin-source= in the URI)")
	}
	if !filepath.IsAbs(u.PINFile) {
		return "", fmt.Errorf("signing: PIN file %q: the path must be absolute", u.PINFile)
	}
	b, err := os.ReadFile(u.PINFile)
	if err != nil {
		return "", fmt.Errorf("signing: PIN file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pin := strings.TrimSuffix(line, "\r")
	if pin == "" {
		return "", fmt.Errorf("signing: PIN file %s is empty", u.PINFile)
	}
	return pin, nil
}
