package signing

import (
	"errors"
	"strings"
	"testing"
)

func TestOpenSigned(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	good := string(stamped(t, a.seal, testNow))
	head, body, _ := strings.Cut(good, "\r\n\r\n")
	_, ct, _ := strings.Cut(head, "MIME-Version: 1.0\r\n")
	boundary := ct[strings.Index(ct, "boundary=")+len("boundary="):]
	boundary = boundary[:strings.IndexAny(boundary, ";\r")]
	sigPart := body[strings.LastIndex(body, "--"+boundary+"\r\n"):]
	for _, tc := range []struct {
		name, msg string
		want      Reason
	}{
		{"no From", strings.Replace(good, "From:", "X-From:", 1), ReasonNoFrom},
		{"two From", strings.Replace(good, "From:", "From: a@b.vn, c@d.vn\r\nX-From:", 1), ReasonNoFrom},
		{"not signed", "From: a@b.vn\r\nContent-Type: text/plain\r\n\r\nhello", ReasonNotSigned},
		{"PGP", strings.Replace(good, "application/pkcs7-signature\"", "application/pgp-signature\"", 1), ReasonBadProtocol},
		{"truncated", good[:len(good)/2], ReasonMalformedMIME},
		{"third part", strings.Replace(good, "--"+boundary+"--", sigPart[:len(sigPart)-2-len(boundary)-4]+"\r\n--"+boundary+"--", 1), ReasonMalformedMIME},
		{"signature not pkcs7", strings.Replace(good, "Content-Type: application/pkcs7-signature", "Content-Type: text/plain", 1), ReasonNoSignature},
		{"signature not base64", strings.Replace(good, "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7s", "Content-Transfer-Encoding: x-uuencode\r\nContent-Disposition: attachment; filename=smime.p7s", 1), ReasonNoSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openSigned([]byte(tc.msg))
			var p *problem
			if !errors.As(err, &p) || p.reason != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
	env, err := openSigned([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(env.entity), "Content-Type: multipart/mixed") || !strings.HasSuffix(string(env.entity), "--") {
		t.Errorf("signed part %.60q ... %q", env.entity, env.entity[len(env.entity)-20:])
	}
}
