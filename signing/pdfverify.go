package signing

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"sealmail/signing/pdf"
)

// Checks of one PDF signature, in the order VerifyPDF reports them.
const (
	CheckByteRange    = "byte-range"   // the signed ranges cover all but the signature itself
	CheckModification = "modification" // nothing but signatures added after it
)

// PDF failure reasons.
const (
	ReasonMalformedPDF    Reason = "malformed-pdf"
	ReasonBadByteRange    Reason = "bad-byte-range"
	ReasonModified        Reason = "modified-after-signing"
	ReasonNoPDFSignature  Reason = "no-pdf-signature" // the PDF carries no signature
	ReasonNoSignerSig     Reason = "no-signer-signature"
	ReasonNoAgencySig     Reason = "no-agency-signature" // the seal's signature is missing or does not cover the file
	ReasonPDFSignerFailed Reason = "pdf-signature-invalid"
)

// PDFSignature is what VerifyPDF found about one signature.
type PDFSignature struct {
	Field        string            `json:"field"`
	SubFilter    string            `json:"subFilter"`
	Signer       string            `json:"signer"` // certificate's common name
	Organization string            `json:"organization,omitempty"`
	SignerCert   *x509.Certificate `json:"-"`
	SigningTime  time.Time         `json:"signingTime,omitzero"` // as the signer claims it
	Timestamp    time.Time         `json:"timestamp,omitzero"`   // of a trusted RFC 3161 token
	// Whole reports whether it covers the whole file as it is.
	Whole  bool    `json:"wholeDocument"`
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Check returns the named check, or nil.
func (s *PDFSignature) Check(name string) *Check {
	for i := range s.Checks {
		if s.Checks[i].Name == name {
			return &s.Checks[i]
		}
	}
	return nil
}

// failure returns the first failed check, or nil.
func (s *PDFSignature) failure() *Check {
	for i := range s.Checks {
		if s.Checks[i].Status == Fail {
			return &s.Checks[i]
		}
	}
	return nil
}

// PDFReport is the verification of every signature in one PDF file.
type PDFReport struct {
	File       string         `json:"file"`
	Err        string         `json:"error,omitempty"` // the file could not be read
	Signatures []PDFSignature `json:"signatures"`
}

// VerifyPDF checks every signature in a PDF as Adobe Reader and vSignPDF do:
// that its byte range covers the file but its own /Contents, the CMS
// signature and digest over those bytes, whether anything but further
// signatures was changed after it, its timestamp, the chain of its
// certificate to roots at the signing time, and revocation. roots nil
// skips the chain and revocation checks. Only opts' CRLs, OCSP,
// RequireRevocation, TSARoots, Now and Skew apply.
func VerifyPDF(data []byte, roots *x509.CertPool, opts VerifyOptions) (*PDFReport, error) {
	return verifyPDF(data, nil, func(*x509.Certificate) *x509.CertPool { return roots }, opts)
}

// verifyPDF is VerifyPDF with the roots chosen per signer's certificate;
// hashed, if not nil, hashed data already.
func verifyPDF(data []byte, hashed *hasher, rootsFor func(*x509.Certificate) *x509.CertPool, opts VerifyOptions) (*PDFReport, error) {
	rep := &PDFReport{}
	f, err := pdf.Parse(data)
	if err != nil {
		rep.Err = err.Error()
		return rep, fail(ReasonMalformedPDF, "%v", err)
	}
	_, cat, err := f.Catalog()
	if err != nil {
		rep.Err = err.Error()
		return rep, fail(ReasonMalformedPDF, "%v", err)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	skew := opts.Skew
	if skew == 0 {
		skew = DefaultSkew
	}
	var sigs []pdf.Dict
	var spans []span
	for _, fd := range fields(f, cat) {
		if f.Dict(fd["V"]) == nil || (fd.Name("FT") != "Sig" && f.Dict(fd["Parent"]).Name("FT") != "Sig") {
			continue
		}
		sigs = append(sigs, fd)
		if r, ok := byteRange(f, f.Dict(fd["V"])); ok {
			spans = append(spans, span{a: int(r[1]), b: int(r[2]), end: int(r[2] + r[3])})
		}
	}
	digests := spanDigests(data, spans, hashed)
	for _, fd := range sigs {
		rep.Signatures = append(rep.Signatures, verifyPDFSignature(f, fd, digests, rootsFor, opts, now, skew))
	}
	return rep, nil
}

// byteRange reads a signature's /ByteRange, [0 b c d] with b < c and c+d
// within the file; ok is false for anything else.
func byteRange(f *pdf.File, v pdf.Dict) (r [4]int64, ok bool) {
	br := f.Array(v["ByteRange"])
	ok = len(br) == 4
	for i := 0; ok && i < 4; i++ {
		r[i], ok = f.Int(br[i])
		ok = ok && r[i] >= 0
	}
	return r, ok && r[0] == 0 && r[1] < r[2] && r[2]+r[3] <= int64(len(f.Data()))
}

// span is the signed bytes of a PDF signature: data[:a] and data[b:end].
type span struct{ a, b, end int }

// spanDigests returns the SHA-256 of every span. The signatures of a file
// signed in turn all start at byte 0 and run to their own /Contents, near
// the end of their revision, so their first parts are prefixes of one
// another: hashing the longest once, and cloning the state at each
// shorter one's gap, hashes a file with several signatures about once.
// A file hashed already (hashed not nil) is hashed again only from the
// state its digest had shortly before each gap.
func spanDigests(data []byte, spans []span, hashed *hasher) map[span][]byte {
	order := slices.Clone(spans)
	slices.SortFunc(order, func(x, y span) int { return x.a - y.a })
	out := make(map[span][]byte, len(spans))
	var h hash.Hash = sha256.New()
	pos := 0
	for _, s := range order {
		if _, done := out[s]; done {
			continue
		}
		if hashed != nil {
			if c, at := hashed.prefix(s.a); at > pos {
				h, pos = c, at
			}
		}
		h.Write(data[pos:s.a])
		pos = s.a
		var c hash.Hash
		if cl, err := h.(hash.Cloner).Clone(); err == nil {
			c = cl
		} else {
			// Not for SHA-256, which can always be cloned; hash afresh.
			c = sha256.New()
			c.Write(data[:s.a])
		}
		c.Write(data[s.b:s.end])
		out[s] = c.Sum(nil)
	}
	return out
}

func verifyPDFSignature(f *pdf.File, field pdf.Dict, digests map[span][]byte, rootsFor func(*x509.Certificate) *x509.CertPool, opts VerifyOptions, now time.Time, skew time.Duration) PDFSignature {
	data := f.Data()
	v := f.Dict(field["V"])
	ps := PDFSignature{SubFilter: string(v.Name("SubFilter"))}
	if t, ok := field["T"].(pdf.String); ok {
		ps.Field = decodeText(t)
	}
	res := &Result{}
	all := []string{CheckByteRange, CheckSignature, CheckModification, CheckTimestamp, CheckChain, CheckValidity, CheckRevocation}
	finish := func() PDFSignature {
		ps.Checks = res.Checks
		ps.OK = ps.failure() == nil
		return ps
	}

	// The byte range: [0 b c d] with the gap exactly the /Contents string.
	br := f.Array(v["ByteRange"])
	var r [4]int64
	ok := len(br) == 4
	for i := 0; ok && i < 4; i++ {
		r[i], ok = f.Int(br[i])
		ok = ok && r[i] >= 0
	}
	contents, _ := v["Contents"].(pdf.String)
	switch {
	case !ok:
		res.add(CheckByteRange, "", fail(ReasonBadByteRange, "no byte range of four offsets"))
	case r[0] != 0 || r[1] >= r[2] || r[2]+r[3] > int64(len(data)):
		res.add(CheckByteRange, "", fail(ReasonBadByteRange, "byte range %v does not fit the file of %d bytes", r, len(data)))
	case data[r[1]] != '<' || data[r[2]-1] != '>' || !isHex(data[r[1]+1:r[2]-1]) || !bytes.Equal(unhexPadded(data[r[1]+1:r[2]-1]), contents):
		res.add(CheckByteRange, "", fail(ReasonBadByteRange, "the unsigned gap %d-%d is not the signature's /Contents", r[1], r[2]))
	default:
		ok = true
		ps.Whole = len(bytes.TrimRight(data[r[2]+r[3]:], "\r\n\t \x00")) == 0
		what := "whole document"
		if !ps.Whole {
			what = fmt.Sprintf("%d of %d bytes: a revision followed by %d more", r[1]+r[3], len(data), int64(len(data))-r[2]-r[3])
		}
		res.add(CheckByteRange, what, nil)
	}
	if res.Checks[0].Status == Fail {
		res.skip("byte range unusable", all[1:]...)
		return finish()
	}

	sig, err := parseSignature(trimDER(contents))
	if sig != nil {
		ps.SignerCert, ps.Signer = sig.cert, sig.cert.Subject.CommonName
		ps.Organization = strings.Join(sig.cert.Subject.Organization, ", ")
		if sig.time.IsZero() {
			// PAdES puts the claimed time in /M instead of the CMS.
			if m, ok := v["M"].(pdf.String); ok {
				sig.time, _ = parsePDFDate(string(m))
			}
		}
		ps.SigningTime = sig.time
	}
	if err == nil {
		err = sig.verify(digests[span{a: int(r[1]), b: int(r[2]), end: int(r[2] + r[3])}])
	}
	res.add(CheckSignature, "signed by "+ps.Signer, err)
	if ps.Whole {
		res.add(CheckModification, "nothing after the signature", nil)
	} else {
		detail, err := changesAfter(f, r[2]+r[3])
		res.add(CheckModification, detail, err)
	}
	if sig == nil {
		res.skip("no signer certificate", CheckTimestamp, CheckChain, CheckValidity, CheckRevocation)
		return finish()
	}
	switch {
	case sig.token == nil:
		res.skip("no RFC 3161 timestamp: the signing time is the signer's claim", CheckTimestamp)
	case opts.TSARoots == nil:
		res.skip("no time-stamping authority is trusted: the signing time is the signer's claim", CheckTimestamp)
	default:
		h := sha256.Sum256(sig.value)
		t, err := checkToken(sig.token, h[:], opts.TSARoots)
		res.add(CheckTimestamp, "timestamped at "+t.Format(time.RFC3339), err)
		if err == nil {
			sig.stamped, ps.Timestamp = t, t
		}
	}
	var chain []*x509.Certificate
	if roots := rootsFor(sig.cert); roots == nil {
		res.skip("no trust roots configured (documents.trust-roots)", CheckChain)
	} else {
		var detail string
		chain, detail, err = chainTo(sig, roots, "a trusted root", []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, now)
		res.add(CheckChain, detail, err)
	}
	detail, err := checkValidity(sig, now, skew)
	res.add(CheckValidity, detail, err)
	if chain == nil {
		res.skip("needs a trusted chain", CheckRevocation)
	} else if sources, err := checkRevocation(chain, opts, now, sig.stamped); err == nil && len(sources) == 0 {
		res.Checks = append(res.Checks, Check{Name: CheckRevocation, Status: Skip, Reason: ReasonNoRevocationInfo,
			Detail: "no CRL or OCSP covers the certificate"})
	} else {
		res.add(CheckRevocation, "not revoked per "+strings.Join(sources, ", "), err)
	}
	return finish()
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// unhexPadded decodes hex digits, an odd last digit padded with 0 as PDF does.
func unhexPadded(b []byte) []byte {
	out := make([]byte, 0, (len(b)+1)/2)
	for i := 0; i < len(b); i += 2 {
		hi, lo := hexVal(b[i]), byte(0)
		if i+1 < len(b) {
			lo = hexVal(b[i+1])
		}
		out = append(out, hi<<4|lo)
	}
	return out
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// trimDER cuts the zero padding after a DER signature in /Contents. BER of
// indefinite length is returned whole for the parser to judge.
func trimDER(b []byte) []byte {
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(b, &raw); err == nil {
		return raw.FullBytes
	}
	return b
}

// changesAfter judges the revisions appended after offset end, the end of
// a signature's range: adding signatures (their fields, widgets,
// appearances, the AcroForm and the annotations of a page) and document
// security data leaves what was signed as it was; anything else, or bytes
// that are no revision at all, is a modification.
func changesAfter(f *pdf.File, end int64) (string, error) {
	data := f.Data()
	old, err := pdf.Parse(data[:end])
	if err != nil {
		return "", fail(ReasonModified, "the signed bytes are not a complete revision: %v", err)
	}
	// Bytes after the last %%EOF belong to no revision.
	if i := bytes.LastIndex(data, []byte("%%EOF")); i < int(end)-len("%%EOF")-2 ||
		len(bytes.TrimRight(data[i+len("%%EOF"):], "\r\n\t \x00")) > 0 {
		return "", fail(ReasonModified, "bytes after the last revision")
	}
	var sigs, others []string
	for _, num := range f.ChangedSince(end) {
		was, err1 := old.Object(num)
		is, err2 := f.Object(num)
		if err1 != nil || err2 != nil {
			return "", fail(ReasonModified, "object %d unreadable after signing", num)
		}
		switch why := allowedChange(f, old, num, was, is); why {
		case "":
		case "signature":
			sigs = append(sigs, fmt.Sprint(num))
		default:
			others = append(others, fmt.Sprintf("object %d (%s)", num, why))
		}
	}
	if len(others) > 0 {
		return "", fail(ReasonModified, "changed after signing: %s", strings.Join(others, ", "))
	}
	return fmt.Sprintf("only signatures added after it (%d objects)", len(sigs)), nil
}

// allowedChange returns "" for an object that changes nothing a reader
// sees, "signature" for a signature's parts, and what it is otherwise.
func allowedChange(f, old *pdf.File, num int, was, is pdf.Object) string {
	if was == nil {
		// A new object shows only through a changed old one, judged below;
		// signature dictionaries are counted.
		if d := f.Dict(is); d != nil && (d.Name("Type") == "Sig" || d.Name("FT") == "Sig") {
			return "signature"
		}
		return ""
	}
	if pdf.Equal(was, is) {
		return ""
	}
	wd, id := dictOf(was), dictOf(is)
	if wa, ok := was.(pdf.Array); ok {
		// An array of references that only grew by signature fields: a
		// page's /Annots or the AcroForm's /Fields.
		ia, ok := is.(pdf.Array)
		if ok && len(ia) > len(wa) && pdf.Equal(wa, ia[:len(wa)]) && allSigFields(f, ia[len(wa):]) {
			return "signature"
		}
		return "array changed"
	}
	if wd == nil || id == nil {
		return "content changed"
	}
	if _, isStream := was.(*pdf.Stream); isStream {
		return "stream changed"
	}
	if ref, ok := f.Trailer()["Info"].(pdf.Ref); ok && ref.Num == num {
		return "" // document information: metadata, not content
	}
	keys := changedKeys(wd, id)
	switch {
	case wd.Name("Type") == "Catalog":
		if within(keys, "AcroForm", "DSS", "Extensions") && formGrew(f, old, wd["AcroForm"], id["AcroForm"]) {
			return "signature"
		}
		return "catalog changed: " + strings.Join(keys, ", ")
	case wd.Name("Type") == "Page":
		if within(keys, "Annots") && grewBySigs(f, old, wd["Annots"], id["Annots"]) {
			return "signature"
		}
		return "page changed: " + strings.Join(keys, ", ")
	case wd.Name("FT") == "Sig":
		// An empty signature field signed later.
		if wd["V"] == nil && within(keys, "V", "AP", "F", "AS", "MK") {
			return "signature"
		}
		return "signature field changed"
	case wd["Fields"] != nil:
		if within(keys, "Fields", "SigFlags", "DR", "DA") && grewBySigs(f, old, wd["Fields"], id["Fields"]) {
			return "signature"
		}
		return "form changed: " + strings.Join(keys, ", ")
	}
	return "changed: " + strings.Join(keys, ", ")
}

func dictOf(o pdf.Object) pdf.Dict {
	switch v := o.(type) {
	case pdf.Dict:
		return v
	case *pdf.Stream:
		return v.Dict
	}
	return nil
}

func changedKeys(a, b pdf.Dict) []string {
	var keys []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !pdf.Equal(v, w) {
			keys = append(keys, string(k))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, string(k))
		}
	}
	slices.Sort(keys)
	return keys
}

func within(keys []string, allowed ...string) bool {
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return false
		}
	}
	return true
}

// formGrew reports whether an AcroForm changed only by new signature
// fields (or not at all, being indirect and judged on its own).
func formGrew(f, old *pdf.File, was, is pdf.Object) bool {
	if pdf.Equal(was, is) {
		return true
	}
	wd, id := old.Dict(was), f.Dict(is)
	if id == nil {
		return false
	}
	if wd == nil {
		wd = pdf.Dict{}
	}
	return within(changedKeys(wd, id), "Fields", "SigFlags", "DR", "DA") && grewBySigs(f, old, wd["Fields"], id["Fields"])
}

// grewBySigs reports whether the array was (resolved in old) is a prefix
// of the array is (resolved in f) and the rest are signature fields.
func grewBySigs(f, old *pdf.File, was, is pdf.Object) bool {
	if r1, ok := was.(pdf.Ref); ok {
		if r2, ok := is.(pdf.Ref); ok && r1 == r2 {
			return true // the array object itself is judged on its own
		}
	}
	wa, ia := old.Array(was), f.Array(is)
	return len(ia) >= len(wa) && pdf.Equal(wa, ia[:len(wa)]) && allSigFields(f, ia[len(wa):])
}

func allSigFields(f *pdf.File, refs pdf.Array) bool {
	for _, r := range refs {
		d := f.Dict(r)
		if d == nil || (d.Name("FT") != "Sig" && f.Dict(d["Parent"]).Name("FT") != "Sig") {
			return false
		}
	}
	return true
}
