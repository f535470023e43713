package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/smallstep/pkcs7"
)

// oidTimeStampToken is id-aa-timeStampToken (RFC 3161 appendix A), the
// unsigned attribute that carries a token over the signature value.
var oidTimeStampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}

// ErrTimestamp marks a signature that could not be timestamped. The fault
// is the time-stamping authority's or the network's, not the document's, so
// trying again later may succeed.
var ErrTimestamp = errors.New("signing: time-stamping failed")

// A Timestamper obtains RFC 3161 time-stamp tokens. When a Seal has one,
// every signature it makes carries a token over its signature value, which
// proves the signature existed at the token's time even if the seal is
// revoked or expires later.
type Timestamper interface {
	// Timestamp returns a DER TimeStampToken (a CMS ContentInfo) whose
	// message imprint is digest, a SHA-256.
	Timestamp(ctx context.Context, digest []byte) ([]byte, error)
}

// maxReply bounds a time-stamp reply; real ones are a few kilobytes.
const maxReply = 1 << 20

// TSAClient is a Timestamper that asks a time-stamping authority over HTTP
// (RFC 3161 §3.4) and checks its reply before the token is used.
type TSAClient struct {
	URL        string
	HTTPClient *http.Client // nil means http.DefaultClient
	// Roots, if set, are the TSA's trust anchors: a token must be signed by
	// a certificate chaining to them with extended key usage timeStamping.
	Roots *x509.CertPool
}

// Timestamp requests a token for digest with a fresh nonce and the TSA's
// certificate included, so that verifiers need nothing but the TSA's root.
func (c *TSAClient) Timestamp(ctx context.Context, digest []byte) ([]byte, error) {
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tq := timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest, Certificates: true, Nonce: nonce}
	req, err := tq.Marshal()
	if err != nil {
		return nil, fmt.Errorf("TSA request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/timestamp-query")
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("TSA: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, fmt.Errorf("TSA %s: %w", c.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("TSA %s: %s", c.URL, resp.Status)
	}
	ts, err := timestamp.ParseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("TSA %s: reply: %w", c.URL, err)
	}
	if ts.Nonce == nil || ts.Nonce.Cmp(nonce) != 0 {
		return nil, fmt.Errorf("TSA %s: reply does not answer our nonce", c.URL)
	}
	if _, err := checkToken(ts.RawToken, digest, c.Roots); err != nil {
		return nil, fmt.Errorf("TSA %s: %w", c.URL, err)
	}
	return ts.RawToken, nil
}

// addTimestamp asks t for a token over the signature value (RFC 3161
// appendix A) and returns it as the unsigned attribute id-aa-timeStampToken.
func addTimestamp(ctx context.Context, t Timestamper, sig []byte) (attribute, error) {
	h := sha256.Sum256(sig)
	token, err := t.Timestamp(ctx, h[:])
	if err != nil {
		return attribute{}, fmt.Errorf("%w: %w", ErrTimestamp, err)
	}
	return attribute{Type: oidTimeStampToken, Value: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: token}}, nil
}

// checkToken checks a TimeStampToken: its signature, that it stamps the
// SHA-256 digest, and, when roots is not nil, that its signer chains to
// roots as a TSA at the token's time. It returns that time.
func checkToken(token, digest []byte, roots *x509.CertPool) (time.Time, error) {
	// timestamp.Parse checks the signature only when the token carries
	// certificates; Timestamp asks for them, and a verifier has no other.
	ts, err := timestamp.Parse(token)
	if err != nil {
		return time.Time{}, fail(ReasonBadTimestamp, "%v", err)
	}
	if len(ts.Certificates) == 0 {
		return time.Time{}, fail(ReasonBadTimestamp, "token carries no TSA certificate")
	}
	if ts.HashAlgorithm != crypto.SHA256 || subtle.ConstantTimeCompare(ts.HashedMessage, digest) != 1 {
		return time.Time{}, fail(ReasonTimestampMismatch, "token stamps %v %x, not this signature", ts.HashAlgorithm, ts.HashedMessage)
	}
	if roots == nil {
		return ts.Time.UTC(), nil
	}
	p7, err := pkcs7.Parse(token)
	if err != nil {
		return time.Time{}, fail(ReasonBadTimestamp, "%v", err)
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return time.Time{}, fail(ReasonBadTimestamp, "token has no single signer")
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		inter.AddCert(c)
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   ts.Time,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return time.Time{}, fail(ReasonUntrustedTSA, "%s: %v", cert.Subject, err)
	}
	return ts.Time.UTC(), nil
}
