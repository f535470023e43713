package smtpd

import (
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

	"github.com/emersion/go-smtp"
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
// Delivery still takes a message whole in memory (the store's API), so the
// spooled messages are loaded one at a time, or a few when smaller: loads
// is a semaphore of Server.MaxMessageSize bytes.
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
		sp.srv.log.Error("smtp spool write", "err", err)
		return errTemporary
	}
	return nil
}

// spill moves the message to a spool file.
func (sp *spool) spill() error {
	f, err := os.CreateTemp(sp.srv.spoolDir, spoolPattern)
	if err != nil {
		sp.srv.log.Error("smtp spool", "err", err)
		return errTemporary
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
		sp.srv.log.Error("smtp spool write", "err", err)
		return errTemporary
	}
	sp.buf = sp.buf[:headroom]
	return nil
}

// bytes returns the message with at least headroom free bytes before it in
// the slice's backing array, loading a spooled message into memory when
// allowed (release gives that back).
func (sp *spool) bytes(ctx context.Context) ([]byte, error) {
	if sp.f == nil {
		return sp.buf, nil
	}
	n, err := sp.srv.loads.acquire(ctx, sp.size)
	if err != nil {
		return nil, errBusy
	}
	sp.load = n
	b := make([]byte, headroom+sp.size)
	if _, err := sp.f.ReadAt(b[headroom:], 0); err != nil {
		sp.srv.log.Error("smtp spool read", "err", err)
		return nil, errTemporary
	}
	return b, nil
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

// prepend returns prefix and the message buf[at:] as one message, in place
// when prefix fits before it.
func prepend(prefix string, buf []byte, at int) []byte {
	if len(prefix) <= at {
		at -= len(prefix)
		copy(buf[at:], prefix)
		return buf[at:]
	}
	msg := make([]byte, 0, len(prefix)+len(buf)-at)
	return append(append(msg, prefix...), buf[at:]...)
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
