package signing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// writeSigned appends to out, after the caller's header fields, the MIME
// header and body of a multipart/signed message (RFC 1847, RFC 8551) whose
// signed part is a multipart/mixed of parts. The part is hashed as it is
// written, so a large attachment is read once on its way to out. Writes go
// to memory and a hash and cannot fail; only the part writers can.
func writeSigned(ctx context.Context, out *bytes.Buffer, s *Seal, now time.Time, parts ...func(io.Writer) error) error {
	b := newBoundary()
	ct := mime.FormatMediaType("multipart/signed", map[string]string{
		"protocol": "application/pkcs7-signature",
		"micalg":   "sha-256",
		"boundary": b,
	})
	out.WriteString("MIME-Version: 1.0\r\n")
	if err := writeField(out, "Content-Type", ct); err != nil {
		return err
	}
	fmt.Fprintf(out, "\r\nThis is an S/MIME signed message.\r\n\r\n--%s\r\n", b)
	t := &teeHash{out: out, from: out.Len(), h: newHasher(out.Available())}
	err := writeMultipart(t, textproto.Header{}, "multipart/mixed", nil, parts)
	sum := t.sum()
	if err != nil {
		return err
	}
	der, err := signDetached(ctx, s, sum, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\r\n--%s\r\n"+
		"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n"+
		"Content-Transfer-Encoding: base64\r\n"+
		"Content-Disposition: attachment; filename=smime.p7s\r\n"+
		"Content-Description: S/MIME Cryptographic Signature\r\n\r\n", b)
	writeBase64(out, der) // to memory: cannot fail
	fmt.Fprintf(out, "\r\n--%s--\r\n", b)
	return nil
}

// teeHash appends to out and hashes what it appends: out's new bytes go
// to a hasher in pieces of about sharePiece, without a copy, so that a
// large entity is hashed on another core while it is written.
type teeHash struct {
	out  *bytes.Buffer
	from int // where out's bytes not yet hashed start
	h    *hasher
}

func (t *teeHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), hashChunk)
		t.out.Write(p[:k])
		p = p[k:]
		// Should out grow, the pieces shared stay valid in the old array.
		if t.out.Len()-t.from >= sharePiece {
			t.h.share(t.out.Bytes()[t.from:])
			t.from = t.out.Len()
		}
	}
	return n, nil
}

// sum hashes the rest and returns the digest.
func (t *teeHash) sum() []byte {
	t.h.share(t.out.Bytes()[t.from:])
	t.from = t.out.Len()
	sum, _ := t.h.Sum()
	return sum
}

// envelope is a multipart/signed message taken apart.
type envelope struct {
	header mail.Header
	from   string // the single From: address
	entity []byte // first part, exactly the bytes that were signed
	sig    []byte // DER or BER SignedData
}

// openSigned splits a CRLF-canonical message into its signed part and
// signature; errors carry the structure check's reasons.
func openSigned(msg []byte) (*envelope, error) {
	h, body, err := splitHeader(msg)
	if err != nil {
		return nil, fail(ReasonMalformedMIME, "%v", err)
	}
	env := &envelope{header: mail.Header{Header: message.Header{Header: h}}}
	from, err := env.header.AddressList("From")
	if err != nil || len(from) != 1 {
		return nil, fail(ReasonNoFrom, "From: must hold exactly one address")
	}
	env.from = from[0].Address
	t, params, err := env.header.ContentType()
	if err != nil || t != "multipart/signed" {
		return nil, fail(ReasonNotSigned, "message is %s, not multipart/signed", t)
	}
	if !isPKCS7Signature(params["protocol"]) {
		return nil, fail(ReasonBadProtocol, "protocol %q is not S/MIME", params["protocol"])
	}
	parts, err := splitMultipart(body, params["boundary"])
	if err != nil {
		return nil, fail(ReasonMalformedMIME, "%v", err)
	}
	if len(parts) != 2 {
		return nil, fail(ReasonMalformedMIME, "multipart/signed has %d parts, want 2", len(parts))
	}
	sp, err := parsePart(parts[1], maxDepth)
	if err != nil || !isPKCS7Signature(sp.mediaType) {
		return nil, fail(ReasonNoSignature, "second part is not application/pkcs7-signature")
	}
	var sig bytes.Buffer
	if err := decodeBody(sp.cte(), sp.body, &sig); err != nil {
		return nil, fail(ReasonNoSignature, "signature part: %v", err)
	}
	env.entity, env.sig = parts[0], sig.Bytes()
	return env, nil
}

// isPKCS7Signature accepts the old x- type that some clients still send.
func isPKCS7Signature(t string) bool {
	t = strings.ToLower(t)
	return t == "application/pkcs7-signature" || t == "application/x-pkcs7-signature"
}
