package signing

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/textproto"

	"sealmail/signing/pdf"
)

// PDFStamp is how Stamp signs the PDF files of a document inside, as
// Decree 30/2020 wants the agency's signature (Art. 5.1, 14, Appendix I):
// every PDF attachment gets the seal's signature as an incremental update.
// The first PDF is the main document: its signature shows the seal image
// over the signer's signature, with the agency's name and the time; the
// others, attachments (phụ lục), show the main document's number and the
// time at the top right of their first page.
type PDFStamp struct {
	Profile   string      // ProfilePKCS7 when empty
	SealImage image.Image // the agency's red seal; nil shows the text only
}

// isPDF tells the attachments signed inside.
func (p *part) isPDF() bool {
	return isPDF(p.mediaType, p.filename())
}

func isPDF(contentType, name string) bool {
	return contentType == "application/pdf" || strings.HasSuffix(strings.ToLower(name), ".pdf")
}

// updateRoom is what a signature's incremental update takes, at most in
// the common case: the CMS reserve, the appearance and the new objects.
const updateRoom = 256 << 10

// fileBuffers holds the buffers that PDF files are decoded into, once the
// files are checked or their signed form is written (as *[]byte): a new
// one of 10 MB costs about as much as hashing it, in clearing and page
// faults.
var fileBuffers sync.Pool

// fileBuffer returns an empty buffer for p decoded, with room for an
// update after it.
func fileBuffer(p *part) []byte {
	n := decodedSize(p) + updateRoom
	if b, ok := fileBuffers.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, n)
}

// A pdfStamper signs the PDF attachments of a document inside while Stamp
// writes them into the message, the first being the main document.
type pdfStamper struct {
	ctx      context.Context
	seal     *Seal
	doc      Document
	notation string
	now      time.Time
	signed   int // PDFs signed so far
}

// write writes p, a PDF attachment, signed inside, base64 as writePart
// writes a re-encoded part, and returns its manifest entry. The clerk's
// body is read once: while it is decoded (into a buffer with room for the
// update after it, and hashed on another core for the signature), its
// lines that are already as writeBase64 writes them are copied into w
// from the cache, so w's own digest starts at the same time; the rest of
// the signed file is encoded after signing.
func (s *pdfStamper) write(w io.Writer, p *part) (Attachment, error) {
	h := p.header.Copy()
	h.Set("Content-Transfer-Encoding", "base64")
	if err := textproto.WriteHeader(w, h); err != nil {
		return Attachment{}, err
	}
	raw, err := decodeFile(p, fileBuffer(p), w)
	if err != nil {
		return Attachment{}, fmt.Errorf("attachment %q: %w", p.filename(), err)
	}
	signed, sum, err := s.sign(p, raw)
	if err == nil {
		err = writeBase64After(w, raw.lines, signed)
	}
	fileBuffers.Put(&signed)
	if err != nil {
		return Attachment{}, err
	}
	return Attachment{FileName: p.filename(), ContentType: p.mediaType, Size: int64(len(signed)), SHA256: hex.EncodeToString(sum)}, nil
}

// sign signs raw, the decoded p, in place: its digest, taken while it was
// decoded, is most of the signature's. It returns the signed file (raw's
// buffer when the update fits after it) and its SHA-256.
func (s *pdfStamper) sign(p *part, raw *decoded) ([]byte, []byte, error) {
	f, err := pdf.Parse(raw.data)
	if err != nil {
		return raw.data, nil, fmt.Errorf("attachment %q is not a readable PDF: %w", p.filename(), err)
	}
	main := s.signed == 0
	var ap *Appearance
	if main {
		ap, err = mainAppearance(f, s.doc.PDF.SealImage, s.doc.Agency.OrganName, s.now)
	} else {
		ap, err = annexAppearance(f, s.notation, s.now)
	}
	if err != nil {
		return raw.data, nil, err
	}
	reason := "Văn bản số " + s.notation
	if !main {
		reason = "Phụ lục kèm văn bản số " + s.notation
	}
	signed, sum, err := signPDF(s.ctx, pdfInput{data: raw.data, hashed: raw.hashed.state(), owned: true}, s.seal, PDFSignOptions{Profile: s.doc.PDF.Profile,
		Field: "Agency seal", Name: s.doc.Agency.OrganName, Reason: reason, Location: s.doc.Place, Appearance: ap}, s.now)
	if err != nil {
		return raw.data, nil, fmt.Errorf("attachment %q: sign PDF: %w", p.filename(), err)
	}
	s.signed++
	return signed, sum, nil
}

// SignerPolicy is what the main PDF must carry before the agency signs it.
type SignerPolicy struct {
	// Roots are the national roots the signer's certificate must chain to
	// (documents.trust-roots); nil leaves the chain unchecked.
	Roots *x509.CertPool
	// Verify supplies CRLs, OCSP, TSA roots, the time and skew.
	Verify VerifyOptions
}

// CheckSigner checks that the main PDF of msg (its first PDF attachment)
// carries at least one valid signature, the signer's, covering the file
// as it is, before the agency signs it (Decree 30 Art. 14 and 32.2.d).
// It returns the report on that file; err, when not nil, names the reason
// in Vietnamese and English.
func CheckSigner(msg []byte, policy SignerPolicy) (*PDFReport, error) {
	top, err := parsePart(crlf(msg), 0)
	if err != nil {
		return nil, err
	}
	kids := top.kids
	if top.mediaType != "multipart/mixed" {
		kids = []*part{top}
	}
	for _, p := range attachments(kids) {
		if !p.isPDF() {
			continue
		}
		f, err := decodeFile(p, fileBuffer(p), nil)
		if err != nil {
			return nil, fmt.Errorf("tệp %q không đọc được / attachment %q cannot be decoded: %w", p.filename(), p.filename(), err)
		}
		rep, err := verifyPDF(f.data, f.hashed, func(*x509.Certificate) *x509.CertPool { return policy.Roots }, policy.Verify)
		fileBuffers.Put(&f.data) // the report holds copies of what it needs
		rep.File = p.filename()
		if err != nil {
			return rep, fmt.Errorf("tệp %q không phải PDF hợp lệ / %q is not a valid PDF: %w", p.filename(), p.filename(), err)
		}
		return rep, signerVerdict(rep, nil)
	}
	return nil, errors.New("văn bản không có tệp PDF để ký số / the document has no PDF file to sign")
}

// signerVerdict requires a valid signature in rep other than the agency's
// (agency nil: any signature) that nothing but signatures followed.
func signerVerdict(rep *PDFReport, agency *x509.Certificate) error {
	var why string
	for _, s := range rep.Signatures {
		if agency != nil && s.SignerCert != nil && s.SignerCert.Equal(agency) {
			continue
		}
		if c := s.failure(); c != nil {
			why = fmt.Sprintf("%s: %s [%s] %s", s.Signer, c.Name, c.Reason, c.Detail)
			continue
		}
		return nil
	}
	if why == "" {
		return fail(ReasonNoSignerSig, "tệp PDF chính %q chưa có chữ ký số của người có thẩm quyền / the main PDF %q has no signature of the person with authority",
			rep.File, rep.File)
	}
	return fail(ReasonNoSignerSig, "chữ ký số của người có thẩm quyền trong tệp PDF chính %q không hợp lệ / the signer's signature in the main PDF %q is not valid: %s",
		rep.File, rep.File, why)
}

// PDFPolicy is what a receiving agency requires of the PDF files of a
// document (Decree 30 Art. 21.2.a): every signature valid, chained to the
// sender's seal CA or to the national roots and not revoked; the last one
// the sealing agency's, covering the whole file; and, when RequireSigner,
// a signer's signature in the main document before it.
type PDFPolicy struct {
	TrustRoots    []*x509.Certificate // documents.trust-roots
	RequireSigner bool
}

// pdfFile is a PDF attachment as checkManifest decoded it.
type pdfFile struct {
	name string
	*decoded
}

// checkPDFs verifies the PDF attachments of a verified message sealed by
// seal and adds the outcome to res as CheckPDF.
func checkPDFs(res *Result, env *envelope, files []pdfFile, seal *x509.Certificate, opts VerifyOptions) {
	domain := env.from[strings.LastIndexByte(env.from, '@')+1:]
	c := newPDFChecker(res, domain, seal, opts)
	for _, f := range files {
		if !c.file(f.name, f.data, f.hashed) {
			return
		}
	}
	c.finish()
}

// VerifyFiles checks the PDF files of a document that came without its
// S/MIME seal (an edXML package from domain) as Verify's CheckPDF does,
// the agency's signature being the last one of each file: it must chain to
// domain's anchors in opts.Roots (any other signer's to those or to
// opts.PDF.TrustRoots) and cover the whole file; with RequireSigner the
// first PDF, the main document, also carries a valid signer's signature.
// Files that are not PDF are not checked here. err is nil exactly when
// res.OK.
func VerifyFiles(from string, files []File, opts VerifyOptions) (*Result, error) {
	res := &Result{From: from, Domain: strings.ToLower(from[strings.LastIndexByte(from, '@')+1:])}
	if opts.PDF == nil {
		opts.PDF = &PDFPolicy{}
	}
	c := newPDFChecker(res, res.Domain, nil, opts)
	for _, f := range files {
		if !isPDF(f.ContentType, f.Name) {
			continue
		}
		if !c.file(f.Name, f.Data, nil) {
			return res, res.finish()
		}
	}
	if len(c.details) == 0 {
		// Without its S/MIME seal a document is signed only inside its PDFs.
		res.add(CheckPDF, "", fail(ReasonNoPDFSignature, "no PDF file: nothing in the document is signed"))
		return res, res.finish()
	}
	c.finish()
	return res, res.finish()
}

// pdfChecker applies PDFPolicy to the PDF files of one document in order,
// the first being the main document.
type pdfChecker struct {
	res      *Result
	opts     VerifyOptions
	seal     *x509.Certificate // nil: each file's last signer, if it chains to sealPool
	sealPool *x509.CertPool
	rootsFor func(*x509.Certificate) *x509.CertPool
	agency   map[*x509.Certificate]bool // certificates given sealPool (seal nil)
	details  []string
}

func newPDFChecker(res *Result, domain string, seal *x509.Certificate, opts VerifyOptions) *pdfChecker {
	// The seal chains to its agency's anchors, as the S/MIME seal did; any
	// other signer to those or to the national roots, and goes unchecked
	// when no national roots are configured.
	c := &pdfChecker{res: res, opts: opts, seal: seal, sealPool: opts.Roots[strings.ToLower(domain)], agency: map[*x509.Certificate]bool{}}
	var signerPool *x509.CertPool
	if len(opts.PDF.TrustRoots) > 0 {
		signerPool = x509.NewCertPool()
		if c.sealPool != nil {
			signerPool = c.sealPool.Clone()
		}
		for _, r := range opts.PDF.TrustRoots {
			signerPool.AddCert(r)
		}
	}
	c.rootsFor = func(cert *x509.Certificate) *x509.CertPool {
		if seal != nil {
			if cert.Equal(seal) {
				return c.sealPool
			}
			return signerPool
		}
		// Without the S/MIME seal to name the agency, a certificate is the
		// agency's when it chains to the agency's own anchors.
		if c.sealPool != nil {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: c.sealPool, CurrentTime: cert.NotBefore,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				c.agency[cert] = true
				return c.sealPool
			}
		}
		return signerPool
	}
	return c
}

// file checks one file and reports whether to go on; a failure ends the
// check. hashed, if not nil, hashed data already.
func (c *pdfChecker) file(name string, data []byte, hashed *hasher) bool {
	rep, err := verifyPDF(data, hashed, c.rootsFor, c.opts)
	rep.File = name
	c.res.PDFs = append(c.res.PDFs, rep)
	if err == nil {
		seal := c.seal
		if seal == nil {
			if n := len(rep.Signatures); n > 0 && c.agency[rep.Signatures[n-1].SignerCert] {
				seal = rep.Signatures[n-1].SignerCert
			}
		}
		err = pdfVerdict(rep, seal, len(c.details) == 0 && c.opts.PDF.RequireSigner)
	}
	if err != nil {
		var pr *problem
		if errors.As(err, &pr) {
			err = fail(pr.reason, "%q: %s", rep.File, pr.msg)
		}
		c.res.add(CheckPDF, "", err)
		return false
	}
	c.details = append(c.details, rep.summary())
	return true
}

func (c *pdfChecker) finish() {
	if len(c.details) == 0 {
		c.res.skip("no PDF attachment", CheckPDF)
		return
	}
	c.res.add(CheckPDF, strings.Join(c.details, "; "), nil)
}

// pdfVerdict applies PDFPolicy to one file's report.
func pdfVerdict(rep *PDFReport, seal *x509.Certificate, requireSigner bool) error {
	for _, s := range rep.Signatures {
		if c := s.failure(); c != nil {
			return fail(c.Reason, "signature %q by %s: %s: %s", s.Field, s.Signer, c.Name, c.Detail)
		}
	}
	n := len(rep.Signatures)
	if n == 0 {
		return fail(ReasonNoPDFSignature, "no signature inside the file")
	}
	if last := rep.Signatures[n-1]; seal == nil || last.SignerCert == nil || !last.SignerCert.Equal(seal) || !last.Whole {
		return fail(ReasonNoAgencySig, "the last signature is not the sending agency's over the whole file")
	}
	if requireSigner {
		return signerVerdict(rep, seal)
	}
	return nil
}

// summary describes the signatures of a verified file in Vietnamese, for
// the register and the recipients.
func (rep *PDFReport) summary() string {
	var parts []string
	for _, s := range rep.Signatures {
		who := s.Signer
		if s.Organization != "" && s.Organization != s.Signer {
			who += " (" + s.Organization + ")"
		}
		// A trusted token's time is a fact; the signer's own is a claim.
		at := ISOTime(s.SigningTime)
		if !s.Timestamp.IsZero() {
			at = ISOTime(s.Timestamp) + " (dấu thời gian)"
		}
		parts = append(parts, "ký bởi "+who+" lúc "+at)
	}
	return rep.File + ": " + strings.Join(parts, ", ") + ", toàn vẹn"
}
