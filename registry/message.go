package registry

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode subjects in any charset
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"sealmail/signing"
)

// Header fields the registry reads and writes.
const (
	fieldDocument   = "Official-Document"         // added on arrival: the verdict
	fieldDocumentID = "Official-Document-Id"      // set by signing.Stamp
	fieldReceipt    = "Official-Document-Receipt" // set by signing.Receipt
	// fieldSigner optionally names who signed the document, "Position; Full
	// name", for the register and the manifest.
	fieldSigner = "Official-Document-Signer"
)

var wordDecoder = &mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}

// splitHeader returns the top-level header of msg and the offset of its body.
func splitHeader(msg []byte) (mail.Header, int, error) {
	end := len(msg)
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(msg, []byte(sep)); i >= 0 && i+len(sep) < end {
			end = i + len(sep)
		}
	}
	if bytes.HasPrefix(msg, []byte("\r\n")) || bytes.HasPrefix(msg, []byte("\n")) {
		end = bytes.IndexByte(msg, '\n') + 1
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg[:end])))
	if err != nil && !errors.Is(err, io.EOF) {
		return mail.Header{}, 0, err
	}
	return mail.Header{Header: message.Header{Header: h}}, end, nil
}

// setVerdict returns msg with field Official-Document: value on top, and
// without any Official-Document field it came with: a sender must not be able
// to claim a verdict. The top-level header is outside the signed part, so
// the signature still verifies.
func setVerdict(msg []byte, value string) ([]byte, error) {
	line := fieldDocument + ": " + value + "\r\n"
	h, body, err := splitHeader(msg)
	if err != nil {
		return nil, err
	}
	if !h.Has(fieldDocument) {
		return append([]byte(line), msg...), nil
	}
	h.Del(fieldDocument)
	var b bytes.Buffer
	b.Grow(len(msg) + len(line))
	b.WriteString(line)
	if err := textproto.WriteHeader(&b, h.Header.Header); err != nil {
		return nil, err
	}
	b.Write(msg[body:])
	return b.Bytes(), nil
}

// param formats "; key=value", quoted or RFC 2231-encoded as value needs.
func param(key, value string) string {
	return strings.TrimPrefix(mime.FormatMediaType("x", map[string]string{key: value}), "x")
}

// hasAttachment reports whether msg has a leaf part that is named or marked
// as an attachment: the rule by which signing lists files in the manifest.
func hasAttachment(msg []byte) bool {
	e, err := message.Read(bytes.NewReader(msg))
	if e == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return false
	}
	found := false
	e.Walk(func(_ []int, p *message.Entity, err error) error {
		if err != nil || found {
			return err
		}
		if p.MultipartReader() != nil {
			return nil
		}
		disp, dp, _ := p.Header.ContentDisposition()
		_, tp, _ := p.Header.ContentType()
		found = strings.EqualFold(disp, "attachment") || dp["filename"] != "" || tp["name"] != ""
		return nil
	})
	return found
}

// signer reads the optional Official-Document-Signer field.
func signer(h mail.Header) signing.SignerInfo {
	v, err := h.Text(fieldSigner)
	if err != nil || v == "" {
		return signing.SignerInfo{}
	}
	pos, name, ok := strings.Cut(v, ";")
	if !ok {
		return signing.SignerInfo{FullName: strings.TrimSpace(v)}
	}
	return signing.SignerInfo{Position: strings.TrimSpace(pos), FullName: strings.TrimSpace(name)}
}

func signerText(s signing.SignerInfo) string {
	return strings.TrimSpace(s.Position + " " + s.FullName)
}

// checkNames are the checks as a recipient reads them, Vietnamese and English.
var checkNames = map[string][2]string{
	signing.CheckStructure:  {"cấu trúc thư ký số S/MIME", "S/MIME structure"},
	signing.CheckSignature:  {"chữ ký số (nội dung bị thay đổi sau khi ký?)", "digital signature (content altered after signing?)"},
	signing.CheckChain:      {"chứng thư số không do tổ chức được tin cậy của nơi gửi cấp", "certificate not issued by the sender's trusted authority"},
	signing.CheckValidity:   {"thời hạn hiệu lực của chứng thư số", "certificate validity period"},
	signing.CheckEmail:      {"địa chỉ thư trong chứng thư số khác địa chỉ gửi", "certificate address differs from the sender"},
	signing.CheckManifest:   {"danh mục và mã băm tệp đính kèm", "attachment list and digests"},
	signing.CheckEvidence:   {"nội dung biên nhận", "receipt evidence"},
	signing.CheckRevocation: {"chứng thư số đã bị thu hồi hoặc không kiểm tra được", "certificate revoked or revocation unknown"},
	signing.CheckPDF: {"chữ ký số trong tệp PDF (người có thẩm quyền, cơ quan ban hành, toàn vẹn, chứng thư số)",
		"signatures inside the PDF (signer, issuing agency, integrity, certificates)"},
}

// failures lists the failed checks, "check: reason; ...", for receipts and
// logs.
func failures(res *signing.Result) string {
	var out []string
	for _, c := range res.Checks {
		if c.Status == signing.Fail {
			out = append(out, c.Name+": "+string(c.Reason))
		}
	}
	return strings.Join(out, "; ")
}

// notice builds the message recipients find in quarantine instead of a
// document or receipt that failed verification: what failed, in Vietnamese
// and English, every check, and the original attached for inspection.
func notice(from string, to []string, what [2]string, res *signing.Result, orig []byte, now time.Time, host string) ([]byte, error) {
	first := res.Checks[0]
	for _, c := range res.Checks {
		if c.Status == signing.Fail {
			first = c
			break
		}
	}
	names := checkNames[first.Name]
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Name: "Văn thư điện tử / Registry", Address: from}})
	var rcpts []*mail.Address
	for _, t := range to {
		rcpts = append(rcpts, &mail.Address{Address: t})
	}
	h.SetAddressList("To", rcpts)
	oh, _, _ := splitHeader(orig)
	subject, _ := oh.Subject()
	h.SetSubject("[Cách ly / Quarantined] " + subject)
	h.SetDate(now)
	h.SetMessageID(strings.ToLower(rand.Text()) + "@" + host)
	h.Set(fieldDocument, "fail"+param("check", first.Name)+param("reason", string(first.Reason)))
	var b bytes.Buffer
	w, tw, err := textWriter(&b, h)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(tw, "%s này KHÔNG được tiếp nhận: không đạt bước kiểm tra %q (%s).\r\n"+
		"Lý do: %s\r\nNơi gửi: %s\r\n"+
		"Thư gốc được đính kèm để đối chiếu; không dùng nội dung của thư khi chưa xác minh lại với nơi gửi. "+
		"Nơi gửi đã được thông báo nếu là cơ quan đã đăng ký trao đổi văn bản.\r\n\r\n"+
		"This %s was NOT accepted: the %q check failed (%s).\r\n"+
		"Reason: %s\r\nSender: %s\r\n"+
		"The original is attached for inspection; do not rely on it before checking with the sender. "+
		"The sender has been told if it is a registered agency.\r\n\r\n"+
		"Kết quả kiểm tra / Checks:\r\n%s",
		what[0], names[0], first.Name, first.Detail, res.From,
		what[1], names[1], first.Name, first.Detail, res.From, strings.ReplaceAll(res.String(), "\n", "\r\n"))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var ah mail.AttachmentHeader
	ah.SetContentType("message/rfc822", nil)
	ah.SetFilename("original.eml")
	ah.Set("Content-Transfer-Encoding", "8bit")
	aw, err := w.CreateAttachment(ah)
	if err != nil {
		return nil, err
	}
	if _, err := aw.Write(orig); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// textWriter starts a multipart/mixed message with header h in b, and its
// first part, UTF-8 text, to be written and closed before the attachments.
func textWriter(b *bytes.Buffer, h mail.Header) (*mail.Writer, io.WriteCloser, error) {
	w, err := mail.CreateWriter(b, h)
	if err != nil {
		return nil, nil, err
	}
	var th mail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	tw, err := w.CreateSingleInline(th)
	if err != nil {
		return nil, nil, err
	}
	return w, tw, nil
}
