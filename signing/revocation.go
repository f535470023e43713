package signing

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPFetcher sends an OCSP request (RFC 6960) to a responder. It is an
// interface so that Verify stays offline: the caller decides on transport,
// timeouts and caching, and tests answer without a network.
type OCSPFetcher interface {
	FetchOCSP(url string, req []byte) ([]byte, error)
}

// checkRevocation checks chain (seal first) against the CRLs, and the seal
// against OCSP. It returns the sources that vouched for the seal; none and
// no error means nothing was known, which fails only if required.
//
// Only a revocation after stamped, the time of a trusted timestamp, spares
// the signature. Without one every revocation fails the check whatever its
// date: signingTime is the signer's own claim, and a stolen key could
// backdate it.
func checkRevocation(chain []*x509.Certificate, opts VerifyOptions, now, stamped time.Time) ([]string, error) {
	var sources []string
	for i := 0; i+1 < len(chain); i++ {
		n, err := checkCRLs(chain[i], chain[i+1], opts.CRLs, now, stamped)
		if err != nil {
			return nil, err
		}
		if i == 0 && n > 0 {
			sources = append(sources, "CRL")
		}
	}
	if seal := chain[0]; opts.OCSP != nil && len(seal.OCSPServer) > 0 && len(chain) > 1 {
		if err := checkOCSP(seal, chain[1], opts.OCSP, now, stamped); err != nil {
			return nil, err
		}
		sources = append(sources, "OCSP")
	}
	if len(sources) == 0 && opts.RequireRevocation {
		return nil, fail(ReasonNoRevocationInfo, "no CRL or OCSP covers the seal and policy requires one")
	}
	return sources, nil
}

// checkCRLs checks cert against every CRL from issuer and returns how many
// there were. The x509 package parses CRLs but leaves this to its callers.
func checkCRLs(cert, issuer *x509.Certificate, crls []*x509.RevocationList, now, stamped time.Time) (int, error) {
	n := 0
	for _, crl := range crls {
		if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
			continue
		}
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			return n, fail(ReasonBadCRL, "CRL of %s: %v", issuer.Subject, err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(cert.SerialNumber) == 0 && !revokedAfter(e.RevocationTime, stamped) {
				return n, fail(ReasonRevoked, "%s (serial %x) revoked at %s", cert.Subject, cert.SerialNumber, e.RevocationTime.Format(time.RFC3339))
			}
		}
		if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			return n, fail(ReasonStaleCRL, "CRL of %s expired at %s", issuer.Subject, crl.NextUpdate.Format(time.RFC3339))
		}
		n++
	}
	return n, nil
}

// checkOCSP asks the seal's OCSP responder about it.
func checkOCSP(cert, issuer *x509.Certificate, f OCSPFetcher, now, stamped time.Time) error {
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return fail(ReasonOCSPFailed, "request: %v", err)
	}
	raw, err := f.FetchOCSP(cert.OCSPServer[0], req)
	if err != nil {
		return fail(ReasonOCSPFailed, "%s: %v", cert.OCSPServer[0], err)
	}
	r, err := ocsp.ParseResponseForCert(raw, cert, issuer)
	if err != nil {
		return fail(ReasonOCSPFailed, "response: %v", err)
	}
	// x/crypto/ocsp checks that a delegated responder was issued by the CA,
	// not that the CA authorised it to answer (RFC 6960 §4.2.2.2).
	if rc := r.Certificate; rc != nil && !rc.Equal(issuer) && !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return fail(ReasonOCSPFailed, "responder %s lacks id-kp-OCSPSigning", rc.Subject)
	}
	if !r.NextUpdate.IsZero() && now.After(r.NextUpdate) {
		return fail(ReasonStaleOCSP, "response expired at %s", r.NextUpdate.Format(time.RFC3339))
	}
	switch {
	case r.Status == ocsp.Good, r.Status == ocsp.Revoked && revokedAfter(r.RevokedAt, stamped):
		return nil
	case r.Status == ocsp.Revoked:
		return fail(ReasonRevoked, "%s revoked at %s (OCSP)", cert.Subject, r.RevokedAt.Format(time.RFC3339))
	}
	return fail(ReasonOCSPUnknown, "responder does not know the seal")
}

// revokedAfter reports whether a revocation at t came after a trusted
// timestamp, so that it does not touch the signature.
func revokedAfter(t, stamped time.Time) bool {
	return !stamped.IsZero() && t.After(stamped)
}

// HTTPOCSP asks OCSP responders over HTTP (RFC 6960 appendix A, POST). Seals
// name their responder in the certificate; on a closed network it must be
// reachable from the server.
type HTTPOCSP struct {
	Client *http.Client // nil means a client with a 10 s timeout
}

// FetchOCSP implements OCSPFetcher.
func (h HTTPOCSP) FetchOCSP(url string, req []byte) ([]byte, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Post(url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("ocsp %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ocsp %s: %s", url, resp.Status)
	}
	// A response is a few kilobytes; a responder sending more is broken.
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
