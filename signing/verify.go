package signing

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultSkew is how far in the future a signingTime may lie, to allow for
// the signer's clock.
const DefaultSkew = 5 * time.Minute

// VerifyOptions is the verifier's policy.
type VerifyOptions struct {
	// Roots holds the trust anchors of each sending domain, keyed by lower
	// case domain. A seal must chain to its own From: domain's anchors, so
	// one peer's CA cannot vouch for another peer's documents.
	Roots map[string]*x509.CertPool

	// CRLs are checked for the seal and its intermediates.
	CRLs []*x509.RevocationList
	// OCSP, if set, is asked about the seal when its certificate names
	// an OCSP responder.
	OCSP OCSPFetcher
	// RequireRevocation fails verification when neither a CRL nor OCSP
	// covers the seal; otherwise the revocation check is skipped.
	RequireRevocation bool

	// TSARoots are the anchors of the time-stamping authorities trusted
	// to date signatures. A signature with a token from one of them is
	// judged at the token's time, and a revocation after that time does
	// not affect it. When nil, tokens are not checked and the signer's
	// own signingTime is used.
	TSARoots *x509.CertPool

	// PDF, when set, also verifies the signatures inside every PDF
	// attachment (see PDFPolicy) as the check CheckPDF.
	PDF *PDFPolicy

	Now  time.Time     // time of verification; zero means time.Now()
	Skew time.Duration // allowed signingTime skew; zero means DefaultSkew
}

// Verify checks a stamped official document and reports every check in
// the Result; err is nil exactly when res.OK, and then names the first
// failed check. The Result is returned either way, for the register and
// for the sender's rejection notice.
func Verify(msg []byte, opts VerifyOptions) (*Result, error) {
	var m *Manifest
	var pdfs []pdfFile
	var pdfCheck func(*Result)
	res, err := verify(msg, opts, CheckManifest, func(env *envelope, cert *x509.Certificate) (string, error) {
		var err error
		m, pdfs, err = checkManifest(env, cert, opts.PDF != nil)
		if err != nil {
			return "", err
		}
		if opts.PDF != nil && cert != nil {
			pdfCheck = func(res *Result) { checkPDFs(res, env, pdfs, cert, opts) }
		}
		return fmt.Sprintf("%s: %d attachment(s) match", m.DocumentID, len(m.Attachments)), nil
	})
	res.Manifest = m
	switch {
	case opts.PDF == nil:
	case pdfCheck == nil:
		res.skip("the message did not verify", CheckPDF)
	default:
		// Only worth the work once the message itself verified.
		if err == nil {
			pdfCheck(res)
			res.OK = false
			err = res.finish()
		} else {
			res.skip("the message did not verify", CheckPDF)
		}
	}
	for _, f := range pdfs {
		fileBuffers.Put(&f.data) // the reports hold copies of what they need
	}
	return res, err
}

// contentCheck checks what the signed part says, given the signer's
// certificate (nil if the signature could not be parsed).
type contentCheck func(env *envelope, cert *x509.Certificate) (string, error)

// verify runs the checks common to documents and receipts, with content
// as the check named name.
func verify(msg []byte, opts VerifyOptions, name string, content contentCheck) (*Result, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	skew := opts.Skew
	if skew == 0 {
		skew = DefaultSkew
	}
	res := &Result{}
	env, err := openSigned(crlf(msg))
	res.add(CheckStructure, "S/MIME multipart/signed", err)
	if err != nil {
		res.skip("message is not S/MIME", CheckSignature, CheckTimestamp, CheckChain, CheckValidity, CheckEmail, name, CheckRevocation)
		return res, res.finish()
	}
	res.From = env.from
	res.Domain = strings.ToLower(env.from[strings.LastIndexByte(env.from, '@')+1:])

	// The signed part's digest and the attachments' digests are the bulk
	// of the work and independent: compute them on two cores.
	sum := make(chan [sha256.Size]byte, 1)
	go func() { sum <- sha256.Sum256(env.entity) }()
	sig, sigErr := parseSignature(env.sig)
	var cert *x509.Certificate
	if sig != nil {
		cert = sig.cert
		res.SignerCert, res.Signer, res.SigningTime = cert, cert.Subject.String(), sig.time
	}
	contentDetail, contentErr := content(env, cert)
	d := <-sum
	if sigErr == nil {
		sigErr = sig.verify(d[:])
	}
	res.add(CheckSignature, "signed by "+res.Signer, sigErr)
	var chain []*x509.Certificate
	if sig == nil {
		res.skip("no signer certificate", CheckTimestamp, CheckChain, CheckValidity, CheckEmail)
	} else {
		switch {
		case sig.token == nil:
			res.skip("no RFC 3161 timestamp: the signingTime is the signer's claim", CheckTimestamp)
		case opts.TSARoots == nil:
			res.skip("no time-stamping authority is trusted: the signingTime is the signer's claim", CheckTimestamp)
		default:
			h := sha256.Sum256(sig.value)
			t, err := checkToken(sig.token, h[:], opts.TSARoots)
			res.add(CheckTimestamp, "timestamped at "+t.Format(time.RFC3339), err)
			if err == nil {
				sig.stamped, res.Timestamp = t, t
			}
		}
		var detail string
		chain, detail, err = verifyChain(sig, res.Domain, opts.Roots, now)
		res.add(CheckChain, detail, err)
		detail, err = checkValidity(sig, now, skew)
		res.add(CheckValidity, detail, err)
		res.add(CheckEmail, env.from, checkEmail(cert, env.from))
	}
	res.add(name, contentDetail, contentErr)
	if chain == nil {
		res.skip("needs a trusted chain", CheckRevocation)
	} else if sources, err := checkRevocation(chain, opts, now, sig.stamped); err == nil && len(sources) == 0 {
		res.Checks = append(res.Checks, Check{Name: CheckRevocation, Status: Skip, Reason: ReasonNoRevocationInfo,
			Detail: "no CRL or OCSP covers the seal"})
	} else {
		res.add(CheckRevocation, "not revoked per "+strings.Join(sources, ", "), err)
	}
	return res, res.finish()
}

// verifyChain builds a chain from the seal to an anchor of domain and
// returns it, seal first.
func verifyChain(s *signature, domain string, roots map[string]*x509.CertPool, now time.Time) ([]*x509.Certificate, string, error) {
	pool := roots[domain]
	if pool == nil {
		return nil, "", fail(ReasonNoAnchor, "no trust anchor configured for %s", domain)
	}
	chain, detail, err := chainTo(s, pool, "an anchor of "+domain, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, now)
	return chain, domain + " " + detail, err
}

// chainTo builds a chain from the signer's certificate to an anchor in
// pool (described as anchors, for messages) for one of usages, and returns
// it, signer first.
func chainTo(s *signature, pool *x509.CertPool, anchors string, usages []x509.ExtKeyUsage, now time.Time) ([]*x509.Certificate, string, error) {
	inter := x509.NewCertPool()
	for _, c := range s.certs {
		if !c.Equal(s.cert) {
			inter.AddCert(c)
		}
	}
	// The seal's own dates are the validity check's concern; judge the
	// chain at a moment the seal was valid so an expiry is reported once.
	at := s.signedAt()
	if at.IsZero() {
		at = now
	}
	if at.Before(s.cert.NotBefore) {
		at = s.cert.NotBefore
	}
	if at.After(s.cert.NotAfter) {
		at = s.cert.NotAfter
	}
	chains, err := s.cert.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     usages,
	})
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return nil, "", fail(ReasonUntrusted, "%v (not %s)", err, anchors)
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return nil, "", fail(ReasonKeyUsage, "%v", err)
	case err != nil:
		return nil, "", fail(ReasonChainInvalid, "%v", err)
	}
	// An absent KeyUsage extension allows any use (RFC 5280 §4.2.1.3).
	if ku := s.cert.KeyUsage; ku != 0 && ku&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, "", fail(ReasonKeyUsage, "certificate allows neither digitalSignature nor nonRepudiation")
	}
	c := chains[0]
	return c, fmt.Sprintf("anchored in %q", c[len(c)-1].Subject.String()), nil
}

// checkValidity checks the seal at its signing time: a trusted timestamp's,
// else the signingTime, the signer's own claim. Neither may lie in the future.
func checkValidity(s *signature, now time.Time, skew time.Duration) (string, error) {
	t, c := s.signedAt(), s.cert
	switch {
	case t.IsZero():
		return "", fail(ReasonNoSigningTime, "signature has no signingTime")
	case t.After(now.Add(skew)):
		return "", fail(ReasonFutureSigningTime, "signed at %s, after %s", t.Format(time.RFC3339), now.Format(time.RFC3339))
	case t.Before(c.NotBefore):
		return "", fail(ReasonNotYetValid, "signed at %s, certificate valid from %s", t.Format(time.RFC3339), c.NotBefore.Format(time.RFC3339))
	case t.After(c.NotAfter):
		return "", fail(ReasonExpired, "signed at %s, certificate expired %s", t.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
	}
	return fmt.Sprintf("signed at %s, certificate valid %s to %s", t.Format(time.RFC3339),
		c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly)), nil
}

// checkEmail requires the seal to certify the From: address, as mail
// clients do before they show a signature as valid.
func checkEmail(c *x509.Certificate, from string) error {
	switch {
	case len(c.EmailAddresses) == 0:
		return fail(ReasonNoCertEmail, "certificate has no e-mail address")
	case !hasEmail(c, from):
		return fail(ReasonEmailMismatch, "certificate is for %v, From: is %s", c.EmailAddresses, from)
	}
	return nil
}

// checkManifest checks manifest.xml against the attachments, the sealing
// organ and the unsigned Official-Document-Id field. The manifest is
// returned whenever it parses, to show what it claimed. With keepPDFs it
// also returns the PDF attachments as decoded for their digests, so that
// the check of the signatures inside them decodes and hashes them no more.
func checkManifest(env *envelope, cert *x509.Certificate, keepPDFs bool) (*Manifest, []pdfFile, error) {
	root, err := parsePart(env.entity, 0)
	if err != nil {
		return nil, nil, fail(ReasonNoManifest, "signed part: %v", err)
	}
	p, rest, err := xmlPart(root, manifestName)
	if err != nil {
		return nil, nil, fail(ReasonNoManifest, "%v", err)
	}
	m := new(Manifest)
	if err := decodeXML(p, m); err != nil {
		return nil, nil, fail(ReasonBadManifest, "%v", err)
	}
	var got []Attachment
	var pdfs []pdfFile
	for _, a := range attachments(rest) {
		var d Attachment
		if keepPDFs && a.isPDF() {
			var f *decoded
			if f, err = decodeFile(a, fileBuffer(a), nil); err != nil {
				err = fmt.Errorf("attachment %q: %w", a.filename(), err)
			} else {
				pdfs = append(pdfs, pdfFile{a.filename(), f})
				d = describe(a, f.hashed)
			}
		} else {
			d, err = digest(a)
		}
		if err != nil {
			return m, nil, fail(ReasonHashMismatch, "%v", err)
		}
		got = append(got, d)
	}
	if err := checkAttachments(m.Attachments, got); err != nil {
		return m, nil, err
	}
	if !strings.EqualFold(m.From.Email, env.from) {
		return m, nil, fail(ReasonOrganMismatch, "manifest sender %s is not From: %s", m.From.Email, env.from)
	}
	if cert != nil && organID(cert) != "" && m.From.OrganID != organID(cert) {
		return m, nil, fail(ReasonOrganMismatch, "manifest organ %s, seal organ %s", m.From.OrganID, organID(cert))
	}
	// The field is unsigned but mail stores may index by it.
	if env.header.Has("Official-Document-Id") {
		v, err := env.header.Text("Official-Document-Id")
		if err != nil || strings.TrimSpace(v) != m.DocumentID {
			return m, nil, fail(ReasonDocumentIDMismatch, "Official-Document-Id: %q, signed manifest says %q", v, m.DocumentID)
		}
	}
	return m, pdfs, nil
}
