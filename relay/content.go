package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"

	"sealmail/mailstore"
)

// maxHeader is how much of a queued message's start is held in memory: its
// header, for DKIM to choose the fields to sign and for notices to return.
// A longer header is cut at a line: RFC 3464 lets a notice return a portion
// of the original.
const maxHeader = 256 << 10

// outbound is a queued message as it is sent. Its content stays in the blob
// store and is read from there at each use (signing, each transaction), so
// that the workers sending large messages hold buffers, not messages.
type outbound struct {
	store  *mailstore.Store
	ref    mailstore.ContentRef
	header []byte // the header, ending with its empty line
	sig    string // the DKIM-Signature field (with its CRLF), or ""
}

// outboundOf returns queue entry id's message, its header read.
func (q *Queue) outboundOf(ctx context.Context, id int64) (*outbound, error) {
	ref, err := q.Store.QueueContentRef(ctx, id)
	if err != nil {
		return nil, err
	}
	start, err := q.Store.ReadContent(ctx, ref, 0, maxHeader)
	if err != nil {
		return nil, err
	}
	return &outbound{store: q.Store, ref: ref, header: headerOf(start, int64(len(start)) == ref.Size)}, nil
}

// size is what the message is on the wire (less dot-stuffing): SMTP's SIZE.
func (m *outbound) size() int64 { return int64(len(m.sig)) + m.ref.Size }

// open reads the content from the blob store, its errors marked as the
// content's (contentError).
func (m *outbound) open(ctx context.Context) (io.ReadCloser, error) {
	r, err := m.store.OpenContent(ctx, m.ref)
	if err != nil {
		return nil, &contentError{err}
	}
	return contentReader{r}, nil
}

// sign computes the DKIM signature over the content as it is read. A
// failure to read the content is returned; one to sign is only logged: the
// message goes unsigned, as it would from a domain without a key.
func (q *Queue) sign(ctx context.Context, m *outbound, log *slog.Logger) error {
	r, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	sig, err := q.DKIM.Signature(m.header, r)
	var ce *contentError
	if errors.As(err, &ce) {
		return ce.err
	}
	if err != nil {
		log.Error("relay: DKIM signing failed; sending unsigned", "err", err)
		return nil
	}
	m.sig = sig
	return nil
}

// writeTo sends the message: its signature, then its content as it is read.
// A damaged content fails the last read, before the caller ends the data: the
// next hop never takes a message that is not the one queued.
func (m *outbound) writeTo(ctx context.Context, w io.Writer) error {
	r, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.WriteString(w, m.sig); err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

// contentError is a failure to read a queued message's content (missing,
// damaged, a disk error), as opposed to one of the connection: no host can be
// sent the message, so the attempt stops and counts for no recipient.
type contentError struct{ err error }

func (e *contentError) Error() string { return e.err.Error() }
func (e *contentError) Unwrap() error { return e.err }

// contentReader marks its reader's errors as contentErrors.
type contentReader struct{ r io.ReadCloser }

func (c contentReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &contentError{err}
	}
	return n, err
}

func (c contentReader) Close() error { return c.r.Close() }

// headerOf returns the header section of a message that start begins (all
// of it if whole), ending with its empty line. A header longer than start is
// cut after its last whole line.
func headerOf(start []byte, whole bool) []byte {
	if i := bytes.Index(start, []byte("\r\n\r\n")); i >= 0 {
		return start[:i+4]
	}
	if i := bytes.Index(start, []byte("\n\n")); i >= 0 {
		return start[:i+2]
	}
	if !whole {
		start = start[:bytes.LastIndexByte(start, '\n')+1]
	}
	return append(start[:len(start):len(start)], "\r\n"...)
}
