package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/emersion/go-smtp"

	"sealmail/mailstore"
)

// Messages in flight (received, not yet stored) are bounded three ways, so that
// no number of clients, logged in or not, can exhaust the server's memory:
//
//   - a message's first memPerMessage bytes are read into memory, the rest into
//     a spool file, as Postfix writes its queue file while it reads;
//   - all in-memory buffers together stay under maxMemInFlight, past which new
//     messages go to files from their first byte;
//   - the sizes of all messages in flight, in memory or on disk, stay under
//     Server.MaxInFlight: a declared SIZE that does not fit is refused at MAIL
//     with 452, a message that outgrows it at the end of DATA with 451.
//
// Delivery reads a spooled message where it lies (mailstore.Content): only
// its header is read into memory, to add the trace fields and remove forged
// ones. The few messages that must be whole in memory (official documents,
// for the registry) are loaded one at a time, or a few when smaller: loads is
// a semaphore of Server.MaxMessageSize bytes.
//
// A spool file is a buffer before the store's commit, never the commit itself:
// 250 is sent only after Deliver returned, which is after its fsync. So spool
// files are not fsynced, and each is unlinked as soon as it is created: a crash
// leaves nothing behind, and a client that got no 250 sends again.
const (
	memPerMessage  = 256 << 10
	maxMemInFlight = 32 << 20
	// headroom is kept free before the message in memory for the trace fields
	// prepended to it, so they cost no copy of the message.
	headroom = 4 << 10
	// reserveStep is how much of MaxInFlight a message without SIZE takes at a
	// time as it grows.
	reserveStep = 1 << 20
)

var errBusy = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
	Message: "Insufficient system storage: too much mail in flight, try again later"}

var errBusySize = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
	Message: "Insufficient system storage: too much mail in flight for this SIZE, try again later"}

// budget counts bytes against a cap shared by all connections.
type budget struct {
	max  int64
	used atomic.Int64
}

func (b *budget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// loads lets spooled messages into memory for delivery, by size.
type loads struct {
	mu   sync.Mutex
	cond *sync.Cond
	max  int64
	used int64
}

// acquire waits until n bytes may be loaded (n is capped at max, so a single
// message always can be) or ctx ends.
func (l *loads) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, l.max)
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.used+n > l.max {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		l.cond.Wait()
	}
	l.used += n
	return n, nil
}

func (l *loads) release(n int64) {
	l.mu.Lock()
	l.used -= n
	idle := l.used == 0
	l.cond.Broadcast()
	l.mu.Unlock()
	if idle && n >= freeAfter {
		// The runtime would keep a large message's memory, and let the heap
		// grow to twice it before collecting: give it back now that no
		// other large message is loaded (one collection per such message).
		debug.FreeOSMemory()
	}
}

// freeAfter is the size of a loaded message after which its memory is given
// back to the system at once.
const freeAfter = 8 << 20

// buffers keeps in-memory message buffers between messages: grown afresh for
// every message, a 100 KiB one cost more in allocation and zeroing than in
// reading.
var buffers = sync.Pool{New: func() any { b := make([]byte, headroom, headroom+64<<10); return &b }}

// spool is one message being received: buf holds headroom and then the
// message's first bytes; past memPerMessage (or when memory in flight is at its
// cap) the message continues in f, which then holds all of it.
type spool struct {
	srv  *Server
	buf  []byte
	mem  int64 // cap(buf), counted in srv.memory
	f    *os.File
	size int64 // message bytes received
	held int64 // bytes of srv.inflight this message holds
	load int64 // bytes of srv.loads this message holds while loaded
}

func (s *Server) newSpool(held int64) *spool {
	sp := &spool{srv: s, held: held}
	if s.memory.take(headroom + 64<<10) {
		sp.buf = *buffers.Get().(*[]byte)
		sp.mem = int64(cap(sp.buf))
		if sp.mem != headroom+64<<10 {
			s.memory.give(headroom + 64<<10 - sp.mem) // a grown buffer from the pool
		}
	}
	return sp
}

// readFrom reads the message from r. It stops at the size limit and when the
// bytes in flight reach their cap.
func (sp *spool) readFrom(r io.Reader) error {
	limit := sp.srv.maxMessageSize()
	for {
		p, err := sp.space()
		if err != nil {
			return err
		}
		n, rerr := r.Read(p)
		if n > 0 {
			if sp.size+int64(n) > limit {
				return smtp.ErrDataTooLarge
			}
			if sp.size+int64(n) > sp.held {
				more := max(reserveStep, sp.size+int64(n)-sp.held)
				if !sp.srv.inflight.take(more) {
					return errBusy
				}
				sp.held += more
			}
			if err := sp.add(p[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// space returns where the next bytes go: free capacity in buf, grown while
// the message may stay in memory, or all of buf as a buffer for the file.
func (sp *spool) space() ([]byte, error) {
	if sp.f == nil && len(sp.buf) == cap(sp.buf) {
		if grow := min(cap(sp.buf), headroom+memPerMessage-cap(sp.buf)); sp.buf != nil && grow > 0 && sp.srv.memory.take(int64(grow)) {
			sp.buf = slices.Grow(sp.buf, grow)
			sp.srv.memory.give(int64(grow) - (int64(cap(sp.buf)) - sp.mem)) // Grow may round up
			sp.mem = int64(cap(sp.buf))
		} else if err := sp.spill(); err != nil {
			return nil, err
		}
	}
	if sp.f != nil {
		return sp.buf[headroom:cap(sp.buf)], nil
	}
	return sp.buf[len(sp.buf):cap(sp.buf)], nil
}

func (sp *spool) add(p []byte) error {
	sp.size += int64(len(p))
	if sp.f == nil {
		sp.buf = sp.buf[:len(sp.buf)+len(p)]
		return nil
	}
	if _, err := sp.f.Write(p); err != nil {
		return sp.failed(err)
	}
	return nil
}

// failed logs a spool file's failure and says what the client is told: a
// full disk is "insufficient system storage" (RFC 3463 4.3.1), like the
// store's.
func (sp *spool) failed(err error) error {
	sp.srv.log.Error("smtp spool", "err", err)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errStorageFull
	}
	return errTemporary
}

// spill moves the message to a spool file.
func (sp *spool) spill() error {
	f, err := os.CreateTemp(sp.srv.spoolDir, spoolPattern)
	if err != nil {
		return sp.failed(err)
	}
	os.Remove(f.Name())
	sp.f = f
	if sp.buf == nil {
		// Memory in flight is at its cap: a small buffer of its own, uncounted
		// (it is no larger than a connection's reader) for the copy into the file.
		sp.buf = make([]byte, headroom+16<<10)
		return nil
	}
	if _, err := f.Write(sp.buf[headroom:]); err != nil {
		return sp.failed(err)
	}
	sp.buf = sp.buf[:headroom]
	return nil
}

// maxHeader bounds the header of a message, which delivery holds in memory.
// Postfix treats what follows its 100 KiB header_size_limit as body; here the
// header decides where mail goes and which fields are removed, so a longer
// one is refused rather than half read.
const maxHeader = 1 << 20

var errHeaderTooLong = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
	Message: "Message header too long: over 1 MiB before the first empty line"}

// message is a received message on its way to the store: its header in
// memory, after headroom, where trace fields are prepended and forged ones
// removed; its body where it was received, in memory or in the spool file.
type message struct {
	sp   *spool
	buf  []byte // headroom, then the header; the message starts at at
	at   int
	body *io.SectionReader
	// whole is the message in memory, once load was called.
	whole []byte
}

// message splits the received message into its header, read into memory,
// and its body.
func (sp *spool) message() (*message, error) {
	if sp.f == nil {
		end := headroom + headerEnd(sp.buf[headroom:])
		return &message{sp: sp, buf: sp.buf[:end:end], at: headroom,
			body: io.NewSectionReader(bytes.NewReader(sp.buf[end:]), 0, int64(len(sp.buf)-end))}, nil
	}
	b := make([]byte, headroom+min(sp.size, maxHeader))
	if _, err := sp.f.ReadAt(b[headroom:], 0); err != nil {
		sp.srv.log.Error("smtp spool read", "err", err)
		return nil, errTemporary
	}
	end := headerEnd(b[headroom:])
	if end == len(b)-headroom && sp.size > maxHeader {
		return nil, errHeaderTooLong
	}
	return &message{sp: sp, buf: b[: headroom+end : headroom+end], at: headroom,
		body: io.NewSectionReader(sp.f, int64(end), sp.size-int64(end))}, nil
}

// headerEnd returns the length of the header at the start of msg, with the
// empty line that ends it: all of msg if it has no empty line.
func headerEnd(msg []byte) int {
	for i := 0; i < len(msg); {
		end := bytes.IndexByte(msg[i:], '\n')
		if end < 0 {
			return len(msg)
		}
		end += i + 1
		if len(bytes.TrimRight(msg[i:end], "\r\n")) == 0 {
			return end
		}
		i = end
	}
	return len(msg)
}

// header returns the message's header as it now stands.
func (m *message) header() []byte { return m.buf[m.at:] }

// size returns the message's size as it now stands.
func (m *message) size() int64 { return int64(len(m.buf)-m.at) + m.body.Size() }

// ReadAt reads the message as it now stands: header, then body.
func (m *message) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if h := m.header(); off < int64(len(h)) {
		n = copy(p, h[off:])
		if n == len(p) {
			return n, nil
		}
		off = int64(len(h))
	}
	k, err := m.body.ReadAt(p[n:], off-int64(len(m.header())))
	return n + k, err
}

// reader reads the message as it now stands.
func (m *message) reader() io.Reader { return io.NewSectionReader(m, 0, m.size()) }

// prepend adds fields before the header.
func (m *message) prepend(fields string) {
	if len(fields) <= m.at {
		m.at -= len(fields)
		copy(m.buf[m.at:], fields)
		return
	}
	b := make([]byte, 0, len(fields)+len(m.header()))
	m.buf, m.at = append(append(b, fields...), m.header()...), 0
}

// load returns the whole message in memory, as it now stands, when it may
// be loaded (release gives that back).
func (m *message) load(ctx context.Context) ([]byte, error) {
	sp := m.sp
	if m.whole != nil {
		return m.whole, nil
	}
	n, err := sp.srv.loads.acquire(ctx, m.size())
	if err != nil {
		return nil, errBusy
	}
	sp.load += n
	b := make([]byte, m.size())
	if _, err := m.ReadAt(b, 0); err != nil {
		sp.srv.log.Error("smtp spool read", "err", err)
		return nil, errTemporary
	}
	m.whole = b
	return b, nil
}

// replace makes msg, in memory, the message.
func (m *message) replace(msg []byte) {
	m.buf, m.at, m.whole = msg, 0, msg
	m.body = io.NewSectionReader(bytes.NewReader(nil), 0, 0)
}

// content is the message for the store.
func (m *message) content() mailstore.Content {
	if m.whole != nil {
		return mailstore.Bytes(m.whole)
	}
	return mailstore.Content{R: m, Size: m.size()}
}

// release gives back everything the message holds.
func (sp *spool) release() {
	if sp.load > 0 {
		sp.srv.loads.release(sp.load)
		sp.load = 0
	}
	if sp.f != nil {
		sp.f.Close()
		sp.f = nil
	}
	sp.srv.inflight.give(sp.held)
	sp.held = 0
	if sp.mem > 0 {
		if sp.mem <= 2*(headroom+memPerMessage) {
			b := sp.buf[:headroom]
			buffers.Put(&b)
		}
		sp.srv.memory.give(sp.mem)
		sp.mem = 0
	}
	sp.buf = nil
}

const spoolPattern = "msg-*"

// cleanSpool removes spool files a crash left between their creation and
// their unlinking, and makes the directory.
func cleanSpool(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("smtpd: spool: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, spoolPattern))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("smtpd: spool: %w", err)
		}
	}
	return nil
}
