package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strconv"
	"testing"

	"github.com/smallstep/pkcs7"
)

// reissue issues a copy of c for pub, signed by p's CA: same names, new serial.
func reissue(t testing.TB, p *pki, c *x509.Certificate, pub any) *x509.Certificate {
	t.Helper()
	tmpl := *c
	cert, err := create(&tmpl, p.ca, pub, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestSignDetached(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSeal := &Seal{Cert: reissue(t, a, a.seal.Cert, rsaKey.Public()), Chain: a.seal.Chain, Key: rsaKey}
	content := []byte("Content-Type: text/plain\r\n\r\nCông văn số 123/STTTT-VP")
	sum := sha256.Sum256(content)
	for name, s := range map[string]*Seal{"ECDSA": a.seal, "RSA": rsaSeal} {
		t.Run(name, func(t *testing.T) {
			der, err := signDetached(t.Context(), s, sum[:], testNow)
			if err != nil {
				t.Fatal(err)
			}
			// smallstep/pkcs7 is an independent check of the encoding.
			p7, err := pkcs7.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			p7.Content = content
			pool := x509.NewCertPool()
			pool.AddCert(a.ca)
			if err := p7.VerifyWithChainAtTime(pool, testNow); err != nil {
				t.Errorf("pkcs7: %v", err)
			}
			sig, err := parseSignature(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := sig.verify(sum[:]); err != nil {
				t.Errorf("verify: %v", err)
			}
			if !sig.time.Equal(testNow) || !sig.cert.Equal(s.Cert) {
				t.Errorf("signing time %v, signer %v", sig.time, sig.cert.Subject)
			}
			dir := t.TempDir()
			writeFile(t, dir, "ca.pem", EncodeCertsPEM(a.ca))
			writeFile(t, dir, "sig.der", der)
			writeFile(t, dir, "content", content)
			out, err := openssl(t, dir, "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der", "-content", "content",
				"-CAfile", "ca.pem", "-attime", strconv.FormatInt(testNow.Unix(), 10), "-out", "/dev/null")
			if err != nil {
				t.Errorf("openssl: %v\n%s", err, out)
			}
		})
	}
}

func TestSignatureFailures(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	sum := sha256.Sum256([]byte("content"))
	der, err := signDetached(t.Context(), a.seal, sum[:], testNow)
	if err != nil {
		t.Fatal(err)
	}
	parse := func() *signature {
		sig, err := parseSignature(der)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	twin := reissue(t, a, a.seal.Cert, a.seal.Key.Public()) // same key, another certificate
	other := sha256.Sum256([]byte("other"))
	for _, tc := range []struct {
		name   string
		mutate func(*signature)
		digest []byte
		want   Reason
	}{
		{"other content", func(*signature) {}, other[:], ReasonDigestMismatch},
		{"signature value", func(s *signature) { s.value = append([]byte{}, s.value...); s.value[len(s.value)-1] ^= 1 }, sum[:], ReasonBadSignature},
		{"certificate swapped for a twin", func(s *signature) { s.cert = twin }, sum[:], ReasonCertBinding},
		{"digest algorithm", func(s *signature) { s.digestAlg.Algorithm = pkcs7.OIDDigestAlgorithmSHA1 }, sum[:], ReasonAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := parse()
			tc.mutate(sig)
			var p *problem
			if err := sig.verify(tc.digest); !errors.As(err, &p) || p.reason != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
	var p *problem
	if _, err := parseSignature(der[:len(der)/2]); !errors.As(err, &p) || p.reason != ReasonMalformedCMS {
		t.Errorf("truncated: %v", err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := signDetached(t.Context(), &Seal{Cert: a.seal.Cert, Key: edKey}, sum[:], testNow); err == nil {
		t.Error("signed with Ed25519, which OpenSSL 3.0 cannot verify in CMS")
	}
}
