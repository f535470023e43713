package signing

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Check names, in the order Verify reports them.
const (
	CheckStructure    = "structure"  // multipart/signed with a pkcs7-signature part
	CheckSignature    = "signature"  // CMS signature and digest over the signed part
	CheckTimestamp    = "timestamp"  // RFC 3161 token over the signature, from a trusted TSA
	CheckChain        = "chain"      // certificate chain to the sending domain's anchor
	CheckValidity     = "validity"   // certificate valid at the signing time, which is not in the future
	CheckEmail        = "email"      // certificate e-mail address equals From:
	CheckManifest     = "manifest"   // manifest.xml matches the attachments and the seal
	CheckEvidence     = "evidence"   // a receipt's evidence.xml (ParseReceipt)
	CheckRevocation   = "revocation" // CRL and OCSP
	CheckPDF          = "pdf"        // the signatures inside the PDF attachments
	CheckXMLSignature = "xmldsig"    // an edXML package's XML-DSig signature (VerifyEdXML)
)

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip" // not run: an earlier check failed, or no data to check against
)

// Reason is a machine-readable cause of a failed or skipped check.
type Reason string

// Failure reasons, grouped by check.
const (
	ReasonNoFrom        Reason = "no-from"        // From: missing or not a single address
	ReasonNotSigned     Reason = "not-signed"     // not multipart/signed
	ReasonBadProtocol   Reason = "bad-protocol"   // multipart/signed but not S/MIME
	ReasonMalformedMIME Reason = "malformed-mime" // parts cannot be split
	ReasonNoSignature   Reason = "no-signature"   // second part is not a readable pkcs7-signature

	ReasonMalformedCMS   Reason = "malformed-cms"
	ReasonSignerCount    Reason = "signer-count"
	ReasonNoSignerCert   Reason = "no-signer-cert"
	ReasonAlgorithm      Reason = "unsupported-algorithm"
	ReasonDigestMismatch Reason = "digest-mismatch" // signed part altered after signing
	ReasonBadSignature   Reason = "bad-signature"
	ReasonCertBinding    Reason = "signing-cert-mismatch" // signing-certificate-v2 names another cert

	ReasonBadTimestamp      Reason = "bad-timestamp"      // token malformed or its signature invalid
	ReasonTimestampMismatch Reason = "timestamp-mismatch" // token stamps something else
	ReasonUntrustedTSA      Reason = "untrusted-tsa"      // token not from a TSA the verifier trusts

	ReasonNoAnchor     Reason = "no-trust-anchor" // no CA configured for the From: domain
	ReasonUntrusted    Reason = "untrusted-issuer"
	ReasonKeyUsage     Reason = "bad-key-usage"
	ReasonChainInvalid Reason = "chain-invalid"

	ReasonNoSigningTime     Reason = "no-signing-time"
	ReasonFutureSigningTime Reason = "signing-time-in-future"
	ReasonNotYetValid       Reason = "not-yet-valid"
	ReasonExpired           Reason = "expired"

	ReasonNoCertEmail   Reason = "no-cert-email"
	ReasonEmailMismatch Reason = "email-mismatch"

	ReasonNoManifest         Reason = "no-manifest"
	ReasonBadManifest        Reason = "malformed-manifest"
	ReasonAttachmentMissing  Reason = "attachment-missing" // listed but not in the message
	ReasonAttachmentExtra    Reason = "attachment-extra"   // in the message but not listed
	ReasonSizeMismatch       Reason = "size-mismatch"
	ReasonHashMismatch       Reason = "hash-mismatch"
	ReasonOrganMismatch      Reason = "organ-mismatch"       // manifest's From is not the sealing organ
	ReasonDocumentIDMismatch Reason = "document-id-mismatch" // unsigned header disagrees with signed data

	ReasonNoEvidence  Reason = "no-evidence"
	ReasonBadEvidence Reason = "malformed-evidence"

	ReasonRevoked          Reason = "revoked"
	ReasonBadCRL           Reason = "crl-invalid"
	ReasonStaleCRL         Reason = "crl-stale"
	ReasonOCSPFailed       Reason = "ocsp-failed"
	ReasonOCSPUnknown      Reason = "ocsp-unknown"
	ReasonStaleOCSP        Reason = "ocsp-stale"
	ReasonNoRevocationInfo Reason = "no-revocation-info"
)

// Check is the outcome of one named check.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Reason Reason `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Result is a verification report. It prints as text, one check a line,
// and marshals to JSON.
type Result struct {
	OK          bool              `json:"ok"`
	From        string            `json:"from,omitempty"`
	Domain      string            `json:"domain,omitempty"`
	Signer      string            `json:"signer,omitempty"` // subject of SignerCert
	SignerCert  *x509.Certificate `json:"-"`
	SigningTime time.Time         `json:"signingTime,omitzero"`
	Timestamp   time.Time         `json:"timestamp,omitzero"` // of a trusted RFC 3161 token; used instead of SigningTime
	Manifest    *Manifest         `json:"manifest,omitempty"`
	PDFs        []*PDFReport      `json:"pdfs,omitempty"` // with VerifyOptions.PDF

	Checks []Check `json:"checks"`
}

// Check returns the named check, or nil.
func (r *Result) Check(name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

func (r *Result) String() string {
	var b strings.Builder
	verdict := "REJECTED"
	if r.OK {
		verdict = "VERIFIED"
	}
	fmt.Fprintf(&b, "%s from=%s signer=%q", verdict, r.From, r.Signer)
	if r.Manifest != nil {
		fmt.Fprintf(&b, " document=%s", r.Manifest.DocumentID)
	}
	b.WriteByte('\n')
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s %-10s", strings.ToUpper(string(c.Status)), c.Name)
		if c.Reason != "" {
			fmt.Fprintf(&b, " [%s]", c.Reason)
		}
		if c.Detail != "" {
			fmt.Fprintf(&b, " %s", c.Detail)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// add records a check from a checker's outcome: err is a *problem for a
// failure with a reason.
func (r *Result) add(name, detail string, err error) {
	c := Check{Name: name, Status: Pass, Detail: detail}
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		var p *problem
		if errors.As(err, &p) {
			c.Reason, c.Detail = p.reason, p.msg
		}
	}
	r.Checks = append(r.Checks, c)
}

func (r *Result) skip(detail string, names ...string) {
	for _, n := range names {
		r.Checks = append(r.Checks, Check{Name: n, Status: Skip, Detail: detail})
	}
}

// finish sets OK and returns the first failure as an error.
func (r *Result) finish() error {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return fmt.Errorf("signing: %s check failed: %s: %s", c.Name, c.Reason, c.Detail)
		}
	}
	r.OK = true
	return nil
}

// problem is a check failure with its reason; checkers return it as error.
type problem struct {
	reason Reason
	msg    string
}

func (p *problem) Error() string { return string(p.reason) + ": " + p.msg }

func fail(r Reason, format string, args ...any) error {
	return &problem{reason: r, msg: fmt.Sprintf(format, args...)}
}

// Add records a check made apart from the verification that made r (an
// edXML package's XML signature beside its PDF files) and returns the
// first failure, as the verification did.
func (r *Result) Add(c Check) error {
	r.Checks = append(r.Checks, c)
	r.OK = false
	return r.finish()
}
