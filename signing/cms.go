package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/smallstep/pkcs7"
)

// Signing builds CMS SignedData (RFC 5652) here rather than with
// pkcs7.SignedData because v0.2.3 always stamps signingTime with the wall
// clock and wants the whole content to hash it again; Stamp passes its own
// time and a digest computed while the message was written. Parsing uses
// pkcs7.Parse, which also accepts the BER that OpenSSL and NSS emit.

var (
	oidSigningCertV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47} // RFC 5035
	oidECPublicKey   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
)

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"optional"` // [0] EXPLICIT, built by hand
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo contentInfo                // detached: type only
	Certificates     asn1.RawValue              // [0] IMPLICIT SET OF Certificate
	SignerInfos      []signerInfo               `asn1:"set"`
}

type signerInfo struct {
	Version            int
	SID                issuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        []attribute `asn1:"set,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      []attribute `asn1:"optional,omitempty,set,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// attribute has the same shape as pkcs7's unexported attribute so parsed
// attributes convert to it and re-encode to the bytes that were signed.
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

// signingCertificateV2 binds the signer's certificate into the signed
// attributes (RFC 5035), so it cannot be swapped for another with the same key.
type signingCertificateV2 struct {
	Certs    []essCertIDv2
	Policies asn1.RawValue `asn1:"optional"`
}

type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"` // absent means SHA-256
	CertHash      []byte
	IssuerSerial  issuerSerial `asn1:"optional"`
}

type issuerSerial struct {
	Issuer []asn1.RawValue // GeneralNames holding one directoryName
	Serial *big.Int
}

func newAttribute(oid asn1.ObjectIdentifier, v any) (attribute, error) {
	der, err := asn1.Marshal(v)
	if err != nil {
		return attribute{}, fmt.Errorf("attribute %v: %w", oid, err)
	}
	return attribute{Type: oid, Value: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: der}}, nil
}

// signDetached returns a DER SignedData over content whose SHA-256 is
// digest, signed by s at time t and timestamped if s has a Timestamper.
func signDetached(ctx context.Context, s *Seal, digest []byte, t time.Time) ([]byte, error) {
	return signCMS(ctx, s, digest, t, true)
}

// signCMS is signDetached, with the signingTime attribute only when
// signingTime is set: PAdES (ETSI EN 319 142-1 §5.2.1) forbids it, the
// time being the signature dictionary's /M or the timestamp's.
func signCMS(ctx context.Context, s *Seal, digest []byte, t time.Time, signingTime bool) ([]byte, error) {
	sigAlg, err := signatureAlgorithm(s.Key.Public())
	if err != nil {
		return nil, err
	}
	certHash := sha256.Sum256(s.Cert.Raw)
	ess := signingCertificateV2{Certs: []essCertIDv2{{
		CertHash: certHash[:],
		IssuerSerial: issuerSerial{
			Issuer: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: s.Cert.RawIssuer}},
			Serial: s.Cert.SerialNumber,
		},
	}}}
	var attrs []attribute
	for _, a := range []struct {
		oid asn1.ObjectIdentifier
		v   any
	}{
		{pkcs7.OIDAttributeContentType, pkcs7.OIDData},
		{pkcs7.OIDAttributeSigningTime, t.UTC().Truncate(time.Second)},
		{pkcs7.OIDAttributeMessageDigest, digest},
		{oidSigningCertV2, ess},
	} {
		if !signingTime && a.oid.Equal(pkcs7.OIDAttributeSigningTime) {
			continue
		}
		attr, err := newAttribute(a.oid, a.v)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, attr)
	}
	// DER orders a SET OF by encoding (X.690 §11.6). Verifiers that
	// re-encode the attributes, as NSS does for PDF signatures, would
	// otherwise hash other bytes than were signed.
	slices.SortFunc(attrs, func(a, b attribute) int {
		x, _ := asn1.Marshal(a)
		y, _ := asn1.Marshal(b)
		return bytes.Compare(x, y)
	})
	signed, err := asn1.MarshalWithParams(attrs, "set")
	if err != nil {
		return nil, fmt.Errorf("signed attributes: %w", err)
	}
	h := sha256.Sum256(signed)
	sig, err := s.Key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var unsigned []attribute
	if s.Timestamper != nil {
		a, err := addTimestamp(ctx, s.Timestamper, sig)
		if err != nil {
			return nil, err
		}
		unsigned = append(unsigned, a)
	}
	var certs []byte
	for _, c := range append([]*x509.Certificate{s.Cert}, s.Chain...) {
		certs = append(certs, c.Raw...)
	}
	sha := pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDDigestAlgorithmSHA256}
	sd, err := asn1.Marshal(signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha},
		EncapContentInfo: contentInfo{ContentType: pkcs7.OIDData},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                issuerAndSerial{Issuer: asn1.RawValue{FullBytes: s.Cert.RawIssuer}, Serial: s.Cert.SerialNumber},
			DigestAlgorithm:    sha,
			SignedAttrs:        attrs,
			SignatureAlgorithm: sigAlg,
			Signature:          sig,
			UnsignedAttrs:      unsigned,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("signed data: %w", err)
	}
	der, err := asn1.Marshal(contentInfo{
		ContentType: pkcs7.OIDSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sd},
	})
	if err != nil {
		return nil, fmt.Errorf("content info: %w", err)
	}
	return der, nil
}

// signatureAlgorithm names the CMS signature algorithm for a seal key. Only
// ECDSA and RSA PKCS#1 v1.5 are offered: OpenSSL 3.0 cannot verify Ed25519
// CMS and common Go CMS code cannot verify RSA-PSS.
func signatureAlgorithm(pub crypto.PublicKey) (pkix.AlgorithmIdentifier, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDDigestAlgorithmECDSASHA256}, nil
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDEncryptionAlgorithmRSA, Parameters: asn1.NullRawValue}, nil
	}
	return pkix.AlgorithmIdentifier{}, fmt.Errorf("unsupported seal key %T: use ECDSA or RSA", pub)
}

// signature is a parsed detached SignedData with a single signer.
type signature struct {
	cert      *x509.Certificate
	certs     []*x509.Certificate // every certificate carried, for chain building
	time      time.Time           // signingTime; zero when absent
	attrs     []attribute
	token     []byte    // id-aa-timeStampToken; nil when absent
	stamped   time.Time // the token's time once Verify trusts it
	sigAlg    pkix.AlgorithmIdentifier
	digestAlg pkix.AlgorithmIdentifier
	value     []byte
}

// parseSignature parses DER or BER SignedData. The signature itself is
// checked later by verify, once the content digest is known.
func parseSignature(der []byte) (*signature, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fail(ReasonMalformedCMS, "%v", err)
	}
	if len(p7.Signers) != 1 {
		return nil, fail(ReasonSignerCount, "%d signers, want exactly one", len(p7.Signers))
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return nil, fail(ReasonNoSignerCert, "signer's certificate is not in the signature")
	}
	si := p7.Signers[0]
	s := &signature{cert: cert, certs: p7.Certificates, sigAlg: si.DigestEncryptionAlgorithm, digestAlg: si.DigestAlgorithm, value: si.EncryptedDigest}
	for _, a := range si.AuthenticatedAttributes {
		s.attrs = append(s.attrs, attribute(a))
	}
	for _, a := range si.UnauthenticatedAttributes {
		if a.Type.Equal(oidTimeStampToken) {
			s.token = a.Value.Bytes
			break
		}
	}
	if v, ok := s.attr(pkcs7.OIDAttributeSigningTime); ok {
		if _, err := asn1.Unmarshal(v, &s.time); err != nil {
			return nil, fail(ReasonMalformedCMS, "signingTime: %v", err)
		}
	}
	return s, nil
}

// signedAt is when the signature was made, as far as the verifier knows.
func (s *signature) signedAt() time.Time {
	if !s.stamped.IsZero() {
		return s.stamped
	}
	return s.time
}

// attr returns the DER of the first value of a signed attribute.
func (s *signature) attr(oid asn1.ObjectIdentifier) ([]byte, bool) {
	for _, a := range s.attrs {
		if a.Type.Equal(oid) {
			return a.Value.Bytes, true
		}
	}
	return nil, false
}

// verify checks that the signature covers content with SHA-256 digest.
func (s *signature) verify(digest []byte) error {
	if !s.digestAlg.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
		return fail(ReasonAlgorithm, "digest algorithm %v, want SHA-256", s.digestAlg.Algorithm)
	}
	var alg x509.SignatureAlgorithm
	switch o := s.sigAlg.Algorithm; {
	case o.Equal(pkcs7.OIDDigestAlgorithmECDSASHA256), o.Equal(oidECPublicKey):
		alg = x509.ECDSAWithSHA256
	case o.Equal(pkcs7.OIDEncryptionAlgorithmRSA), o.Equal(pkcs7.OIDEncryptionAlgorithmRSASHA256):
		alg = x509.SHA256WithRSA
	default:
		return fail(ReasonAlgorithm, "signature algorithm %v", o)
	}
	// Without signed attributes nothing would bind signingTime or the
	// certificate; RFC 8551 signers always include them.
	var ct asn1.ObjectIdentifier
	if v, ok := s.attr(pkcs7.OIDAttributeContentType); !ok {
		return fail(ReasonMalformedCMS, "no signed contentType attribute")
	} else if _, err := asn1.Unmarshal(v, &ct); err != nil || !ct.Equal(pkcs7.OIDData) {
		return fail(ReasonMalformedCMS, "signed content type is not id-data")
	}
	var md []byte
	if v, ok := s.attr(pkcs7.OIDAttributeMessageDigest); !ok {
		return fail(ReasonMalformedCMS, "no messageDigest attribute")
	} else if _, err := asn1.Unmarshal(v, &md); err != nil {
		return fail(ReasonMalformedCMS, "messageDigest: %v", err)
	}
	if subtle.ConstantTimeCompare(md, digest) != 1 {
		return fail(ReasonDigestMismatch, "signed part was altered: digest %x, signed %x", digest, md)
	}
	signed, err := asn1.MarshalWithParams(s.attrs, "set")
	if err != nil {
		return fail(ReasonMalformedCMS, "signed attributes: %v", err)
	}
	if err := s.cert.CheckSignature(alg, signed, s.value); err != nil {
		return fail(ReasonBadSignature, "%v", err)
	}
	return s.checkESS()
}

// checkESS checks signing-certificate-v2 when present. OpenSSL adds it only
// with -cades, so its absence is accepted.
func (s *signature) checkESS() error {
	v, ok := s.attr(oidSigningCertV2)
	if !ok {
		return nil
	}
	var sc signingCertificateV2
	if _, err := asn1.Unmarshal(v, &sc); err != nil || len(sc.Certs) == 0 {
		return fail(ReasonMalformedCMS, "signing-certificate-v2 is malformed")
	}
	id := sc.Certs[0]
	if len(id.HashAlgorithm.Algorithm) > 0 && !id.HashAlgorithm.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
		return fail(ReasonAlgorithm, "signing-certificate-v2 hash %v", id.HashAlgorithm.Algorithm)
	}
	h := sha256.Sum256(s.cert.Raw)
	if !bytes.Equal(id.CertHash, h[:]) {
		return fail(ReasonCertBinding, "signing-certificate-v2 names another certificate")
	}
	return nil
}
