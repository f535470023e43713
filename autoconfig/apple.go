package autoconfig

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
)

// MobileConfig returns an Apple configuration profile (iOS, iPadOS, macOS) that
// sets up the mail account of address and, when caPEM is not empty, installs
// the local CA so that the device trusts the server. The password is not in
// it: the device asks for it when the profile is installed.
func MobileConfig(address, name string, s Server, caPEM []byte) ([]byte, error) {
	if s.IMAPS == 0 && s.IMAP == 0 || s.Submissions == 0 && s.Submission == 0 {
		return nil, errors.New("mobileconfig: IMAP and submission listeners must be on")
	}
	imapPort, imapTLS := s.IMAPS, true
	if imapPort == 0 {
		imapPort = s.IMAP // Apple Mail upgrades with STARTTLS when UseSSL is false
		imapTLS = false
	}
	smtpPort, smtpTLS := s.Submissions, true
	if smtpPort == 0 {
		smtpPort, smtpTLS = s.Submission, false
	}
	id := "vn.sealmail." + s.Host
	mail := dict{
		"PayloadType":                            "com.apple.mail.managed",
		"PayloadVersion":                         1,
		"PayloadIdentifier":                      id + ".mail." + address,
		"PayloadUUID":                            uuid("mail", s.Host, address),
		"PayloadDisplayName":                     address,
		"EmailAccountDescription":                address,
		"EmailAccountName":                       name,
		"EmailAccountType":                       "EmailTypeIMAP",
		"EmailAddress":                           address,
		"IncomingMailServerAuthentication":       "EmailAuthPassword",
		"IncomingMailServerHostName":             s.Host,
		"IncomingMailServerPortNumber":           imapPort,
		"IncomingMailServerUseSSL":               imapTLS,
		"IncomingMailServerUsername":             address,
		"OutgoingMailServerAuthentication":       "EmailAuthPassword",
		"OutgoingMailServerHostName":             s.Host,
		"OutgoingMailServerPortNumber":           smtpPort,
		"OutgoingMailServerUseSSL":               smtpTLS,
		"OutgoingMailServerUsername":             address,
		"OutgoingPasswordSameAsIncomingPassword": true,
	}
	payloads := []any{mail}
	if len(caPEM) > 0 {
		blk, _ := pem.Decode(caPEM)
		if blk == nil {
			return nil, errors.New("mobileconfig: the CA is not PEM")
		}
		payloads = append(payloads, dict{
			"PayloadType":                "com.apple.security.root",
			"PayloadVersion":             1,
			"PayloadIdentifier":          id + ".ca",
			"PayloadUUID":                uuid("ca", s.Host, string(blk.Bytes)),
			"PayloadDisplayName":         "CA " + s.Host,
			"PayloadCertificateFileName": s.Host + "-ca.cer",
			"PayloadContent":             blk.Bytes,
		})
	}
	profile := dict{
		"PayloadType":         "Configuration",
		"PayloadVersion":      1,
		"PayloadIdentifier":   id + "." + address,
		"PayloadUUID":         uuid("profile", s.Host, address),
		"PayloadDisplayName":  "Thư điện tử " + address,
		"PayloadDescription":  "Cấu hình thư điện tử cho " + address + " / Mail settings for " + address,
		"PayloadOrganization": s.Host,
		"PayloadContent":      payloads,
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	if err := plist(&b, profile, 0); err != nil {
		return nil, err
	}
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

// dict is a property list dictionary.
type dict map[string]any

// plist writes v in Apple's XML property list format.
func plist(b *bytes.Buffer, v any, depth int) error {
	indent := func() {
		for range depth {
			b.WriteByte('\t')
		}
	}
	indent()
	switch v := v.(type) {
	case string:
		b.WriteString("<string>")
		xml.EscapeText(b, []byte(v))
		b.WriteString("</string>\n")
	case int:
		fmt.Fprintf(b, "<integer>%d</integer>\n", v)
	case bool:
		if v {
			b.WriteString("<true/>\n")
		} else {
			b.WriteString("<false/>\n")
		}
	case []byte:
		b.WriteString("<data>" + base64.StdEncoding.EncodeToString(v) + "</data>\n")
	case []any:
		b.WriteString("<array>\n")
		for _, x := range v {
			if err := plist(b, x, depth+1); err != nil {
				return err
			}
		}
		indent()
		b.WriteString("</array>\n")
	case dict:
		b.WriteString("<dict>\n")
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			indent()
			b.WriteString("\t<key>")
			xml.EscapeText(b, []byte(k))
			b.WriteString("</key>\n")
			if err := plist(b, v[k], depth+1); err != nil {
				return err
			}
		}
		indent()
		b.WriteString("</dict>\n")
	default:
		return fmt.Errorf("plist: unsupported %T", v)
	}
	return nil
}

// uuid derives a stable UUID (version 5 layout, SHA-256 based) from parts, so
// that installing a newer profile for the same account replaces the old one.
func uuid(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
