package imapserver

import (
	"crypto/tls"
	"net"
	"sync"
	"syscall"
	"time"
)

// sealmail: a command's context is cancelled when its client hangs up, so that
// a long LIST, SEARCH or FETCH stops instead of running for nobody. Nothing
// reads the socket while a command runs, so the end of the stream is seen by
// asking the kernel whether the peer has closed its side (hungUp, per
// platform), once a second after the first hangupDelay: a short command
// never pays for the check, and a client that pipelines commands and closes
// its side at once (a script) still gets its answers.
const hangupDelay = time.Second

// watchHangup calls cancel when the client of c hangs up, until stop is called.
func watchHangup(c net.Conn, cancel func()) (stop func()) {
	raw := rawConn(c)
	if raw == nil {
		return func() {}
	}
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(hangupDelay, func() {
		gone := hungUp(raw)
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if gone {
			cancel()
			return
		}
		t.Reset(hangupDelay)
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// rawConn finds the socket under c, looking through TLS and through wrappers
// that expose what they wrap with a NetConn method.
func rawConn(c net.Conn) syscall.RawConn {
	for i := 0; i < 8; i++ {
		switch v := c.(type) {
		case syscall.Conn:
			raw, err := v.SyscallConn()
			if err != nil {
				return nil
			}
			return raw
		case *tls.Conn:
			c = v.NetConn()
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
