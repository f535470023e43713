package imapserver

import (
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

func (c *Conn) handleIdle(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}

	if err := c.writeContReq("idling"); err != nil {
		return err
	}

	// sealmail: a session that says when it has updates is polled from a
	// goroutine started only then (see SessionIdleNotify).
	var end func() error
	if s, ok := c.session.(SessionIdleNotify); ok {
		end = c.idleNotify(s)
	} else {
		end = c.idle()
	}

	c.setReadTimeout(idleReadTimeout)
	// sealmail: the wait holds no read buffer (see awaitInput); this
	// command's decoder has read its line and reads no more.
	var (
		line     []byte
		isPrefix bool
	)
	err := c.awaitInput()
	if err == nil {
		line, isPrefix, err = c.br.ReadLine()
	}
	// sealmail: wait for the updates to stop whatever ended the IDLE, so
	// that they never run alongside Session.Close (the connection may be
	// gone).
	idleErr := end()
	if err == io.EOF {
		return nil
	} else if err != nil {
		return err
	} else if isPrefix || string(line) != "DONE" {
		return newClientBugError("Syntax error: expected DONE to end IDLE command")
	}

	return idleErr
}

// idle runs Session.Idle until the returned function is called, which
// returns what Idle did.
func (c *Conn) idle() func() error {
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				c.server.logger().Printf("panic idling: %v\n%s", v, debug.Stack())
				done <- fmt.Errorf("imapserver: panic idling")
			}
		}()
		w := &UpdateWriter{conn: c, allowExpunge: true}
		done <- c.session.Idle(w, stop)
	}()
	return func() error {
		close(stop)
		return <-done
	}
}

// idler polls a SessionIdleNotify for an idling client whenever it is
// notified, from a goroutine that runs only while there is something to poll
// for. sealmail: not in upstream.
type idler struct {
	c *Conn

	mu      sync.Mutex
	ended   sync.Cond // signalled when running becomes false
	pending bool      // notified since the last poll began
	running bool      // a goroutine is polling
	stopped bool
	err     error // of the last poll; no poll follows a failed one
}

// idleNotify starts polling s on its notifications until the returned
// function is called, which waits for a poll in progress and returns the
// error of a failed one.
func (c *Conn) idleNotify(s SessionIdleNotify) func() error {
	i := &idler{c: c}
	i.ended.L = &i.mu
	stopNotify := s.IdleNotify(i.notify)
	return func() error {
		stopNotify()
		i.mu.Lock()
		defer i.mu.Unlock()
		i.stopped = true
		for i.running {
			i.ended.Wait()
		}
		return i.err
	}
}

func (i *idler) notify() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.pending = true
	if !i.running && !i.stopped && i.err == nil {
		i.running = true
		go i.run()
	}
}

// run polls while notifications keep coming: one poll answers all those
// that came before it began.
func (i *idler) run() {
	i.mu.Lock()
	defer i.mu.Unlock()
	for i.pending && !i.stopped && i.err == nil {
		i.pending = false
		i.mu.Unlock()
		err := i.poll()
		i.mu.Lock()
		i.err = err
	}
	i.running = false
	i.ended.Broadcast()
}

func (i *idler) poll() (err error) {
	defer func() {
		if v := recover(); v != nil {
			i.c.server.logger().Printf("panic idling: %v\n%s", v, debug.Stack())
			err = fmt.Errorf("imapserver: panic idling")
		}
	}()
	return i.c.session.Poll(&UpdateWriter{conn: i.c, allowExpunge: true}, true)
}
