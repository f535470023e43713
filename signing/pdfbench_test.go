package signing

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"sealmail/signing/signingtest"
)

// The 10 MB release benchmarks: what stamping and verifying a document
// whose main PDF is 10 MB cost against the SHA-256 digests each cannot
// avoid, timed in the same loop so that the machine's load hits both alike.
// They report wall ms of the operation and of its digests per op, and
// "x-digests", their ratio (the target: at most 1.2).

// releaseFixture is a 10 MB three-page letter signed by the director, as
// a clerk submits it, and the same document once stamped.
type releaseFixture struct {
	msg, stamped []byte
	seal         *Seal
	doc          Document
	opts         VerifyOptions
	signedPDF    []byte   // the attachment as stamped
	ranges       [][3]int // its signatures' byte ranges, the signer's and the agency's
	entity       []byte   // the signed MIME entity: the attachment's base64 form and the rest
}

func newReleaseFixture(b *testing.B) *releaseFixture {
	ca := newNationalCA(b, testNow)
	signer := ca.person(b, "Nguyễn Văn An", agencyA.OrganName, testNow)
	a := newPKI(b, agencyA, testNow, testNow)
	main := signLetter(b, signingtest.Letter(7, 10<<20, 3), signer)
	img, err := ParseSealImage(signingtest.SealPNG(400))
	if err != nil {
		b.Fatal(err)
	}
	x := &releaseFixture{seal: a.seal, doc: testDocument(agencyA)}
	x.doc.PDF = &PDFStamp{SealImage: img}
	x.msg = buildMessage(b, agencyA.OfficialAddress, testSubject, file{"Công văn 123.pdf", "application/pdf", main})
	if x.stamped, err = Stamp(b.Context(), x.msg, x.seal, x.doc, testNow.Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	x.opts = options(testNow.Add(time.Hour), map[Agency]*pki{agencyA: a})
	x.opts.PDF = &PDFPolicy{TrustRoots: []*x509.Certificate{ca.Cert}, RequireSigner: true}
	x.signedPDF = attachedFiles(b, x.stamped)["Công văn 123.pdf"]
	x.ranges = byteRanges(b, x.signedPDF)
	env, err := openSigned(crlf(x.stamped))
	if err != nil {
		b.Fatal(err)
	}
	x.entity = env.entity
	return x
}

var byteRangeRE = regexp.MustCompile(`/ByteRange\s*\[\s*0\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

// byteRanges reads the byte ranges of the PDF's signatures, [0 a b n]
// each, as {a, b, n}: the signer's and the agency's.
func byteRanges(b *testing.B, pdf []byte) [][3]int {
	ms := byteRangeRE.FindAllSubmatch(pdf, -1)
	if len(ms) != 2 {
		b.Fatalf("%d byte ranges, want the signer's and the agency's", len(ms))
	}
	var out [][3]int
	for _, m := range ms {
		var r [3]int
		for i := range r {
			r[i], _ = strconv.Atoi(string(m[i+1]))
		}
		out = append(out, r)
	}
	return out
}

// rangesDigest hashes the given byte ranges of the PDF.
func rangesDigest(pdf []byte, ranges [][3]int) {
	for _, r := range ranges {
		h := sha256.New()
		h.Write(pdf[:r[0]])
		h.Write(pdf[r[1] : r[1]+r[2]])
		h.Sum(nil)
	}
}

// benchRelease runs operation in b's loop after, each time, the digests
// it cannot avoid: the PDF's byte ranges (all of them, or the last), the
// attachment and its base64 form, each hashed from the start as the issue
// counts them. It reports both wall times and their ratio, x-digests, and
// the same for the process's CPU time (x-digests-cpu): on a shared
// machine the operation, which uses both cores, may get only one.
// Those digests can also be had by hashing each byte once, the attachment
// and the entity, since the byte ranges are all but a few kilobytes of
// the attachment: x-one-pass is the operation against that, also timed in
// the loop.
func benchRelease(b *testing.B, x *releaseFixture, allRanges bool, operation func() error) {
	ranges := x.ranges
	if !allRanges {
		ranges = ranges[1:] // the agency's, the one stamping signs
	}
	b.SetBytes(int64(len(x.signedPDF)))
	b.ReportAllocs()
	defer reportCPU(b)()
	var dig, pass, op, digCPU, opCPU time.Duration
	for b.Loop() {
		t, c := time.Now(), cpuTime()
		rangesDigest(x.signedPDF, ranges)
		sha256.Sum256(x.signedPDF)
		sha256.Sum256(x.entity)
		dig += time.Since(t)
		digCPU += cpuTime() - c
		t = time.Now()
		sha256.Sum256(x.signedPDF)
		sha256.Sum256(x.entity)
		pass += time.Since(t)
		t, c = time.Now(), cpuTime()
		if err := operation(); err != nil {
			b.Fatal(err)
		}
		op += time.Since(t)
		opCPU += cpuTime() - c
	}
	n := float64(b.N)
	b.ReportMetric(float64(op.Microseconds())/1e3/n, "op-ms/op")
	b.ReportMetric(float64(dig.Microseconds())/1e3/n, "digests-ms/op")
	b.ReportMetric(float64(op)/float64(dig), "x-digests")
	b.ReportMetric(float64(op)/float64(pass), "x-one-pass")
	b.ReportMetric(float64(opCPU.Microseconds())/1e3/n, "op-cpu-ms/op")
	b.ReportMetric(float64(opCPU)/float64(digCPU), "x-digests-cpu")
}

// BenchmarkStampRelease10MB: Stamp signs the PDF inside (one byte range to
// hash) and seals the message (the attachment for the manifest, its base64
// form in the signed entity).
func BenchmarkStampRelease10MB(b *testing.B) {
	x := newReleaseFixture(b)
	benchRelease(b, x, false, func() error {
		_, err := Stamp(b.Context(), x.msg, x.seal, x.doc, testNow.Add(time.Minute))
		return err
	})
}

// BenchmarkStampRelease10MBLines72 is BenchmarkStampRelease10MB for a
// clerk's client that wrote base64 lines of 72 characters, which RFC 2045
// allows: Stamp cannot copy them into the message as they are, and
// encodes the whole signed file.
func BenchmarkStampRelease10MBLines72(b *testing.B) {
	x := newReleaseFixture(b)
	msg := crlf(x.msg)
	root, err := parsePart(msg, 0)
	if err != nil {
		b.Fatal(err)
	}
	body := attachments(root.kids)[0].body
	var raw bytes.Buffer
	if err := decodeBase64(&raw, body); err != nil {
		b.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString(raw.Bytes())
	lines := bytes.Join(slices.Collect(slices.Chunk([]byte(enc), 72)), []byte("\r\n"))
	msg = bytes.Replace(msg, body, lines, 1)
	benchRelease(b, x, false, func() error {
		_, err := Stamp(b.Context(), msg, x.seal, x.doc, testNow.Add(time.Minute))
		return err
	})
}

// BenchmarkVerifyRelease10MB: Verify checks the S/MIME seal (the base64
// form in the entity, the attachment against the manifest) and both
// signatures in the PDF (two byte ranges).
func BenchmarkVerifyRelease10MB(b *testing.B) {
	x := newReleaseFixture(b)
	benchRelease(b, x, true, func() error {
		_, err := Verify(x.stamped, x.opts)
		return err
	})
}
