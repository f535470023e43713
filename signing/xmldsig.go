package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// The XML-DSig signature some edXML hubs put in a package's edXMLHeader:
// enveloped (it covers the whole document but itself, Reference URI=""),
// exclusive canonicalization, SHA-256, RSA or ECDSA, the certificates in
// KeyInfo/X509Data, as the SDK samples write it. The legal signatures
// stay inside the PDF files; this one says that the agency sent this very
// package, header and all.

// Digest algorithms accepted on XML signatures: SHA-1 is not, since a
// collision lets a signed package be swapped for another.
var xmlDigests = map[string]bool{
	"http://www.w3.org/2001/04/xmlenc#sha256":       true,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
	"http://www.w3.org/2001/04/xmlenc#sha512":       true,
}

// SignEdXML returns the edXML package data signed by seal: an enveloped
// XML-DSig Signature (default namespace, as in the SDK samples) at the end
// of edXMLHeader.
func SignEdXML(data []byte, seal *Seal) ([]byte, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("signing: edXML: %w", err)
	}
	root := doc.Root()
	var header *etree.Element
	if root != nil {
		header = root.FindElement("./edXMLEnvelope/edXMLHeader")
	}
	switch {
	case root == nil || root.Tag != "edXML" || header == nil:
		return nil, errors.New("signing: edXML: not an edXML package (no edXML/edXMLEnvelope/edXMLHeader)")
	case len(signatures(root)) > 0:
		return nil, errors.New("signing: edXML: the package is signed already")
	}
	var key crypto.Signer = seal.Key
	if k, ok := key.Public().(*ecdsa.PublicKey); ok {
		key = rawECDSA{Signer: key, size: (k.Curve.Params().BitSize + 7) / 8}
	}
	certs := [][]byte{seal.Cert.Raw}
	for _, c := range seal.Chain {
		if !c.Equal(seal.Cert) {
			certs = append(certs, c.Raw)
		}
	}
	ctx, err := dsig.NewSigningContext(key, certs)
	if err != nil {
		return nil, fmt.Errorf("signing: edXML: %w", err)
	}
	ctx.Prefix = ""
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	sig, err := ctx.ConstructSignature(root, true)
	if err != nil {
		return nil, fmt.Errorf("signing: edXML: %w", err)
	}
	header.AddChild(sig)
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("signing: edXML: %w", err)
	}
	return out, nil
}

// rawECDSA signs as XML-DSig wants ECDSA signatures (RFC 4050, RFC 6931):
// r and s as two fixed-size big-endian integers, not the ASN.1 DER that
// crypto.Signer returns and goxmldsig would copy as it is.
type rawECDSA struct {
	crypto.Signer
	size int // bytes of each of r and s
}

func (k rawECDSA) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	der, err := k.Signer.Sign(rand, digest, opts)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("ECDSA signature is not DER: %v", err)
	}
	out := make([]byte, 2*k.size)
	rs.R.FillBytes(out[:k.size])
	rs.S.FillBytes(out[k.size:])
	return out, nil
}

// signatures returns the XML-DSig Signature elements anywhere under root.
func signatures(root *etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, e := range root.FindElements("//Signature") {
		if e.NamespaceURI() == dsig.Namespace {
			out = append(out, e)
		}
	}
	return out
}

// VerifyEdXML checks the XML-DSig signature of an edXML package sent by
// the agency whose official address is from and whose organ is organ:
// the signature over the whole package, the signer's certificate chaining
// to from's domain's anchors in opts.Roots (its seal CA, as the agency's
// PDF signatures must), valid now and not revoked, and naming organ when
// it names one. It returns the check and, when the signature
// verifies, the signed content: the package without its signature, which
// is what the caller must read from then on. An unsigned package passes
// as a skipped check unless require, and returns nil content.
func VerifyEdXML(data []byte, from, organ string, opts VerifyOptions, require bool) (Check, []byte) {
	res := &Result{}
	signed := verifyEdXML(res, data, from, organ, opts, require)
	return res.Checks[0], signed
}

func verifyEdXML(res *Result, data []byte, from, organ string, opts VerifyOptions, require bool) []byte {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		res.add(CheckXMLSignature, "", fail(ReasonBadSignature, "the package is not well-formed XML: %v", err))
		return nil
	}
	root := doc.Root()
	if root == nil {
		res.add(CheckXMLSignature, "", fail(ReasonBadSignature, "the package is not XML: no root element"))
		return nil
	}
	sigs := signatures(root)
	switch {
	case len(sigs) == 0 && require:
		res.add(CheckXMLSignature, "", fail(ReasonNotSigned, "the package has no XML signature and documents.require-edxml-signature is set"))
		return nil
	case len(sigs) == 0:
		res.Checks = append(res.Checks, Check{Name: CheckXMLSignature, Status: Skip, Reason: ReasonNotSigned,
			Detail: "no XML signature: only the signatures inside the PDF files vouch for the package"})
		return nil
	case len(sigs) > 1:
		res.add(CheckXMLSignature, "", fail(ReasonSignerCount, "%d XML signatures, want one", len(sigs)))
		return nil
	}
	sig := sigs[0]
	var certs []*x509.Certificate
	for _, e := range sig.FindElements("./KeyInfo/X509Data/X509Certificate") {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(e.Text()), ""))
		if err != nil {
			res.add(CheckXMLSignature, "", fail(ReasonNoSignerCert, "KeyInfo certificate: %v", err))
			return nil
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			res.add(CheckXMLSignature, "", fail(ReasonNoSignerCert, "KeyInfo certificate: %v", err))
			return nil
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		res.add(CheckXMLSignature, "", fail(ReasonNoSignerCert, "the signature carries no certificate in KeyInfo/X509Data"))
		return nil
	}
	for _, d := range sig.FindElements("./SignedInfo/Reference/DigestMethod") {
		if alg := d.SelectAttrValue("Algorithm", ""); !xmlDigests[alg] {
			res.add(CheckXMLSignature, "", fail(ReasonAlgorithm, "digest %s is not accepted (SHA-256 or stronger)", alg))
			return nil
		}
	}
	cert := certs[0]
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
		if err := derECDSA(sig, (k.Curve.Params().BitSize+7)/8); err != nil {
			res.add(CheckXMLSignature, "", fail(ReasonBadSignature, "%v", err))
			return nil
		}
	}
	// goxmldsig checks the signature with the certificate it is given;
	// whether to trust that certificate is decided below, as for a seal.
	v := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	v.Clock = dsig.NewFakeClockAt(clampTo(now, cert))
	verified, err := v.Validate(root)
	if err != nil {
		res.add(CheckXMLSignature, "", fail(ReasonBadSignature, "the package was changed after it was signed, or the signature is broken: %v", err))
		return nil
	}
	content, err := etree.NewDocumentWithRoot(verified).WriteToBytes()
	if err != nil {
		res.add(CheckXMLSignature, "", fail(ReasonBadSignature, "%v", err))
		return nil
	}
	s := &signature{cert: cert, certs: certs, time: now}
	domain := strings.ToLower(from[strings.LastIndexByte(from, '@')+1:])
	pool := opts.Roots[domain]
	if pool == nil {
		res.add(CheckXMLSignature, "", fail(ReasonNoAnchor, "no trust anchor configured for %s", domain))
		return nil
	}
	chain, anchored, err := chainTo(s, pool, "an anchor of "+domain, []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, now)
	if err != nil {
		res.add(CheckXMLSignature, "", err)
		return nil
	}
	if _, err := checkValidity(s, now, 0); err != nil {
		res.add(CheckXMLSignature, "", err)
		return nil
	}
	if id := organID(cert); id != "" && id != organ {
		res.add(CheckXMLSignature, "", fail(ReasonOrganMismatch, "signed by organ %s, the package is from %s", id, organ))
		return nil
	}
	sources, err := checkRevocation(chain, opts, now, time.Time{})
	if err != nil {
		res.add(CheckXMLSignature, "", err)
		return nil
	}
	revocation := "no CRL or OCSP covers the certificate"
	if len(sources) > 0 {
		revocation = "not revoked per " + strings.Join(sources, ", ")
	}
	res.add(CheckXMLSignature, fmt.Sprintf("signed by %q, %s %s, %s", cert.Subject.CommonName, domain, anchored, revocation), nil)
	return content
}

// clampTo returns t within c's validity, so that goxmldsig's own date
// check does not pre-empt checkValidity's reasoned one.
func clampTo(t time.Time, c *x509.Certificate) time.Time {
	switch {
	case t.Before(c.NotBefore):
		return c.NotBefore
	case t.After(c.NotAfter):
		return c.NotAfter
	}
	return t
}

// derECDSA rewrites an ECDSA SignatureValue of r‖s (XML-DSig's form) as
// the ASN.1 DER that goxmldsig and crypto/x509 verify. A value of another
// length is left for the check to judge: some signers write DER.
func derECDSA(sig *etree.Element, size int) error {
	el := sig.FindElement("./SignatureValue")
	if el == nil {
		return errors.New("the signature has no SignatureValue")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(el.Text()), ""))
	if err != nil {
		return fmt.Errorf("SignatureValue: %v", err)
	}
	if len(raw) != 2*size {
		return nil
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:size]), new(big.Int).SetBytes(raw[size:])})
	if err != nil {
		return err
	}
	el.SetText(base64.StdEncoding.EncodeToString(der))
	return nil
}
