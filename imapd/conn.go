package imapd

import (
	"net"
	"sync"
	"time"
)

// coalesceConn gathers small writes into fewer system calls. imapserver flushes
// after every FETCH response, so listing 10,000 envelopes would otherwise cost
// 10,000 writes (and TLS records on the client's side). Data is sent when the
// buffer fills, when the server turns to read the client's next command (its
// responses are then complete), or at most flushDelay after it was written, which
// is what carries IDLE updates out promptly.
type coalesceConn struct {
	net.Conn

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
	err   error // a failed background flush, reported by the next call
}

const (
	flushDelay = time.Millisecond
	bufSize    = 32 << 10
)

// Buffers come from a pool so an idle connection holds none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}

func (c *coalesceConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf)+len(p) > bufSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= bufSize {
			return c.Conn.Write(p)
		}
	}
	if c.buf == nil {
		c.buf = (*bufPool.Get().(*[]byte))[:0]
	}
	if len(c.buf) == 0 {
		// The oldest unsent byte waits at most flushDelay.
		if c.timer == nil {
			c.timer = time.AfterFunc(flushDelay, c.flush)
		} else {
			c.timer.Reset(flushDelay)
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *coalesceConn) Read(p []byte) (int, error) {
	c.flush()
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *coalesceConn) Close() error {
	c.flush()
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *coalesceConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *coalesceConn) flushLocked() error {
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, c.err = c.Conn.Write(c.buf)
	b := c.buf[:0]
	c.buf = nil
	bufPool.Put(&b)
	return c.err
}

// SetWriteDeadline sends what is buffered first when the deadline has
// already passed: crypto/tls sets a deadline of "now" right after writing its
// closing alert, expecting the alert to be on the wire. imapserver sets a
// future deadline before every response, which must not defeat coalescing.
func (c *coalesceConn) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() && !time.Now().Before(t) {
		c.flush()
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline flushes for the same reason as SetWriteDeadline.
func (c *coalesceConn) SetDeadline(t time.Time) error {
	if !t.IsZero() && !time.Now().Before(t) {
		c.flush()
	}
	return c.Conn.SetDeadline(t)
}

// NetConn returns the wrapped connection; imapserver looks through it for the
// socket, to notice a client that hangs up during a command.
func (c *coalesceConn) NetConn() net.Conn { return c.Conn }
