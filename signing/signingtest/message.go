package signingtest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/emersion/go-message/mail"
)

// File is an attachment for Message.
type File struct {
	Name, Type string
	Data       []byte
}

// Message writes a message as a mail client would, with go-message: header h,
// a UTF-8 text body, then the files as base64 attachments (names encoded per
// RFC 2047/2231).
func Message(t testing.TB, h mail.Header, text string, files ...File) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := mail.CreateWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	var th mail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	tw, err := w.CreateSingleInline(th)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, text)
	tw.Close()
	for _, f := range files {
		var ah mail.AttachmentHeader
		ah.SetContentType(f.Type, nil)
		ah.SetFilename(f.Name)
		ah.Set("Content-Transfer-Encoding", "base64")
		aw, err := w.CreateAttachment(ah)
		if err != nil {
			t.Fatal(err)
		}
		aw.Write(f.Data)
		aw.Close()
	}
	w.Close()
	return b.Bytes()
}

// PDF returns n pseudo-random bytes, the same for the same seed, posing as a PDF.
func PDF(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	copy(b, "%PDF-1.7\n")
	return b
}
