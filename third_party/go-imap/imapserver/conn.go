package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

const (
	cmdReadTimeout     = 30 * time.Second
	idleReadTimeout    = 35 * time.Minute // section 5.4 says 30min minimum
	literalReadTimeout = 5 * time.Minute

	respWriteTimeout    = 30 * time.Second
	literalWriteTimeout = 5 * time.Minute

	maxCommandSize = 50 * 1024 // RFC 2683 section 3.2.1.5 says 8KiB minimum
)

var internalServerErrorResp = &imap.StatusResponse{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeServerBug,
	Text: "Internal server error",
}

// A Conn represents an IMAP connection to the server.
type Conn struct {
	server *Server
	// sealmail: br and bw are taken from pools when needed and given back
	// while the client is idle (see awaitInput and responseEncoder.end); bw
	// is guarded by encMutex.
	br       *bufio.Reader
	bw       *bufio.Writer
	encMutex sync.Mutex
	// sealmail: rw is what br and bw read and write; batch is set while a
	// command's responses go through a large writer (see batched); wdl is
	// the write deadline last set, guarded by encMutex. first is the byte
	// awaitInput waited for, until br reads it (while hasFirst).
	rw       io.ReadWriter
	batch    bool
	wdl      time.Time
	first    [1]byte
	hasFirst bool

	mutex   sync.Mutex
	conn    net.Conn
	enabled imap.CapSet

	state   imap.ConnState
	session Session

	// sealmail: ctx ends with the connection (or at Server.Close); cmdCtx,
	// derived from it, ends with the command in progress and also when the
	// client hangs up during it. See Context.
	ctx    context.Context
	cancel context.CancelFunc
	cmdCtx context.Context
}

// readerSize bounds a line read whole (an AUTHENTICATE response, the DONE
// ending IDLE); commands themselves are parsed piece by piece.
const (
	readerSize = 1024
	writerSize = 2048
)

// sealmail: a 1 KiB reader and a 2 KiB writer instead of 4 KiB each, and
// pooled: a connection holds them only while it reads a command or writes a
// response, not while its client idles. Commands and the lines of
// AUTHENTICATE are short; literals larger than a buffer bypass it; and
// sealmail's connection gathers written records into larger writes.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writerSize) }}
)

func newConn(c net.Conn, server *Server) *Conn {
	rw := server.options.wrapReadWriter(c)
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{
		conn:    c,
		server:  server,
		rw:      rw,
		enabled: make(imap.CapSet),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// Context returns the context of the command being handled: it is cancelled
// when the client hangs up during the command, when the server closes, and
// once the command ends. A session passes it to work whose only purpose is
// the answer (listing, searching, fetching), so that work stops when nobody
// waits for it and never holds up Server.Close. Writes the client may already
// have seen succeed should not be cut short by it.
//
// sealmail: upstream has no per-command context.
func (c *Conn) Context() context.Context {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	if c.cmdCtx != nil {
		return c.cmdCtx
	}
	return c.ctx
}

// NetConn returns the underlying connection that is wrapped by the IMAP
// connection.
//
// Writing to or reading from this connection directly will corrupt the IMAP
// session.
func (c *Conn) NetConn() net.Conn {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.conn
}

// Bye terminates the IMAP connection.
func (c *Conn) Bye(text string) error {
	respErr := c.writeStatusResp("", &imap.StatusResponse{
		Type: imap.StatusResponseTypeBye,
		Text: text,
	})
	closeErr := c.conn.Close()
	if respErr != nil {
		return respErr
	}
	return closeErr
}

func (c *Conn) EnabledCaps() imap.CapSet {
	c.mutex.Lock()
	defer c.mutex.Unlock()

	return c.enabled.Copy()
}

func (c *Conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.server.logger().Printf("panic handling command: %v\n%s", v, debug.Stack())
		}

		c.cancel()
		c.conn.Close()
	}()

	c.server.mutex.Lock()
	c.server.conns[c] = struct{}{}
	c.server.mutex.Unlock()
	defer func() {
		c.server.mutex.Lock()
		delete(c.server.conns, c)
		c.server.mutex.Unlock()
	}()

	// sealmail: setting up and each command run in functions of their own,
	// so that serve's frame, on an idle client's stack all along, stays
	// small (see awaitInput).
	greetingData, ok := c.newSession()
	if !ok {
		return
	}
	defer func() {
		if err := c.session.Close(); err != nil {
			c.server.logger().Printf("failed to close session: %v", err)
		}
	}()
	if !c.greet(greetingData) {
		return
	}

	for {
		var readTimeout time.Duration
		switch c.state {
		case imap.ConnStateAuthenticated, imap.ConnStateSelected:
			readTimeout = idleReadTimeout
		default:
			readTimeout = cmdReadTimeout
		}
		c.setReadTimeout(readTimeout)

		if c.state == imap.ConnStateLogout {
			break
		}
		if err := c.awaitInput(); err != nil {
			if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				c.server.logger().Printf("failed to read command: %v", err)
			}
			break
		}
		dec := imapwire.NewDecoder(c.br, imapwire.ConnSideServer)
		dec.MaxSize = maxCommandSize
		dec.CheckBufferedLiteralFunc = c.checkBufferedLiteral

		c.setReadTimeout(cmdReadTimeout)
		if err := c.readCommand(dec); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.server.logger().Printf("failed to read command: %v", err)
			}
			break
		}
	}
}

// newSession finishes an implicit TLS handshake and asks for the session,
// or answers why there is none.
func (c *Conn) newSession() (*GreetingData, bool) {
	// sealmail: an implicit TLS handshake is finished first, so that its
	// failure is reported as one (not as a failure to write the greeting).
	if tc, ok := c.conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			c.server.options.tlsFailed(tc.NetConn(), err)
			return nil, false
		}
	}

	session, greetingData, err := c.server.options.NewSession(c)
	if err != nil {
		var (
			resp    *imap.StatusResponse
			imapErr *imap.Error
		)
		if errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeBye {
			resp = (*imap.StatusResponse)(imapErr)
		} else {
			c.server.logger().Printf("failed to create session: %v", err)
			resp = internalServerErrorResp
		}
		if err := c.writeStatusResp("", resp); err != nil {
			c.server.logger().Printf("failed to write greeting: %v", err)
		}
		return nil, false
	}
	c.session = session
	return greetingData, true
}

// greet checks that the session does what the server advertises and writes
// the greeting.
func (c *Conn) greet(greetingData *GreetingData) bool {
	caps := c.server.options.caps()
	if _, ok := c.session.(SessionIMAP4rev2); !ok && caps.Has(imap.CapIMAP4rev2) {
		panic("imapserver: server advertises IMAP4rev2 but session doesn't support it")
	}
	if _, ok := c.session.(SessionNamespace); !ok && caps.Has(imap.CapNamespace) {
		panic("imapserver: server advertises NAMESPACE but session doesn't support it")
	}
	if _, ok := c.session.(SessionMove); !ok && caps.Has(imap.CapMove) {
		panic("imapserver: server advertises MOVE but session doesn't support it")
	}
	if _, ok := c.session.(SessionUnauthenticate); !ok && caps.Has(imap.CapUnauthenticate) {
		panic("imapserver: server advertises UNAUTHENTICATE but session doesn't support it")
	}
	// sealmail: ID and QUOTA.
	if _, ok := c.session.(SessionID); !ok && caps.Has(imap.CapID) {
		panic("imapserver: server advertises ID but session doesn't support it")
	}
	if _, ok := c.session.(SessionSort); !ok && (caps.Has(imap.CapSort) || len(caps.ThreadAlgorithms()) > 0) {
		panic("imapserver: server advertises SORT or THREAD but session doesn't support it")
	}
	if _, ok := c.session.(SessionQuota); !ok && caps.Has(imap.CapQuota) {
		panic("imapserver: server advertises QUOTA but session doesn't support it")
	}
	// sealmail: CONDSTORE and QRESYNC.
	if _, ok := c.session.(SessionCondStore); !ok && (caps.Has(imap.CapCondStore) || caps.Has(imap.CapQResync)) {
		panic("imapserver: server advertises CONDSTORE or QRESYNC but session doesn't support it")
	}

	c.state = imap.ConnStateNotAuthenticated
	statusType := imap.StatusResponseTypeOK
	if greetingData != nil && greetingData.PreAuth {
		c.state = imap.ConnStateAuthenticated
		statusType = imap.StatusResponseTypePreAuth
	}
	if err := c.writeCapabilityStatus("", statusType, "IMAP server ready"); err != nil {
		c.server.logger().Printf("failed to write greeting: %v", err)
		return false
	}
	return true
}

// awaitInput waits for the client's next bytes, with c.br then ready to read
// them. sealmail: a client that sends nothing (between commands, in IDLE)
// holds no read buffer: the wait reads a single byte, and only then is a
// reader taken from the pool. Not to be called with a command's decoder
// still to read from c.br.
func (c *Conn) awaitInput() error {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return nil
		}
		c.releaseReader()
	}
	for {
		n, err := c.rw.Read(c.first[:])
		if n == 1 {
			break
		}
		if err != nil {
			return err
		}
	}
	c.hasFirst = true
	c.takeReader()
	return nil
}

func (c *Conn) releaseReader() {
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
}

func (c *Conn) takeReader() {
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset((*connReader)(c))
}

// connReader is what a connection's reader reads: the byte awaitInput waited
// for, then the connection.
type connReader Conn

func (r *connReader) Read(p []byte) (int, error) {
	if r.hasFirst && len(p) > 0 {
		p[0] = r.first[0]
		r.hasFirst = false
		return 1, nil
	}
	return r.rw.Read(p)
}

func (c *Conn) readCommand(dec *imapwire.Decoder) error {
	var tag, name string
	if !dec.ExpectAtom(&tag) || !dec.ExpectSP() || !dec.ExpectAtom(&name) {
		return fmt.Errorf("in command: %w", dec.Err())
	}
	name = strings.ToUpper(name)

	numKind := NumKindSeq
	if name == "UID" {
		numKind = NumKindUID
		var subName string
		if !dec.ExpectSP() || !dec.ExpectAtom(&subName) {
			return fmt.Errorf("in command: %w", dec.Err())
		}
		name = "UID " + strings.ToUpper(subName)
	}

	// sealmail: each command gets its own context (see Context).
	ctx, cancel := context.WithCancel(c.ctx)
	c.mutex.Lock()
	c.cmdCtx = ctx
	c.mutex.Unlock()
	// IDLE reads from the client all along, and so sees it hang up.
	stopWatch := func() {}
	if name != "IDLE" {
		stopWatch = watchHangup(c.conn, cancel)
	}
	start := time.Now()
	defer func() {
		c.server.options.commandDone(name, time.Since(start)) // sealmail
		stopWatch()
		cancel()
		c.mutex.Lock()
		c.cmdCtx = nil
		c.mutex.Unlock()
	}()

	// sealmail: the commands and the answer are in functions of their own
	// (see serve).
	sendOK, err := c.dispatch(tag, name, numKind, dec)
	if err == errUnknownCommand {
		if c.state == imap.ConnStateNotAuthenticated {
			// Don't allow a single unknown command before authentication to
			// mitigate cross-protocol attacks:
			// https://www-archive.mozilla.org/projects/netlib/portbanning
			c.state = imap.ConnStateLogout
			defer c.Bye("Unknown command")
		}
		err = &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Unknown command",
		}
	}

	dec.DiscardLine()
	if refused, nonSync := dec.LiteralRefused(); refused && nonSync {
		// sealmail: the literal's bytes are on their way and would be read as
		// commands; rather than read up to 4 GiB, end the connection.
		c.state = imap.ConnStateLogout
		defer c.Bye("Literal too large")
		err = &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeLimit,
			Text: "Literals are limited to 4096 bytes for this command",
		}
	}

	return c.respond(ctx, tag, name, sendOK, err)
}

// respond answers a command that ended with err.
func (c *Conn) respond(ctx context.Context, tag, name string, sendOK bool, err error) error {
	var (
		resp    *imap.StatusResponse
		imapErr *imap.Error
		decErr  *imapwire.DecoderExpectError
	)
	if errors.As(err, &imapErr) {
		resp = (*imap.StatusResponse)(imapErr)
	} else if errors.As(err, &decErr) {
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeBad,
			Code: imap.ResponseCodeClientBug,
			Text: "Syntax error: " + decErr.Message,
		}
	} else if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// sealmail: the command was cut short (see Context); its client has
		// left or the server is closing, neither is a bug.
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeUnavailable,
			Text: "Command interrupted",
		}
	} else if err != nil {
		c.server.logger().Printf("handling %v command: %v", name, err)
		resp = internalServerErrorResp
	} else {
		if !sendOK {
			return nil
		}
		if err := c.poll(name); err != nil {
			return err
		}
		resp = &imap.StatusResponse{
			Type: imap.StatusResponseTypeOK,
			Text: fmt.Sprintf("%v completed", name),
		}
		// sealmail: RFC 7162 3.2.10 (and 3.1.8 for CONDSTORE clients).
		if name == "EXPUNGE" || name == "UID EXPUNGE" {
			resp.Code = c.highestModSeqCode()
		}
	}
	return c.writeStatusResp(tag, resp)
}

// errUnknownCommand is what dispatch returns for a command it does not know.
var errUnknownCommand = errors.New("imapserver: unknown command")

// dispatch runs a command. sendOK is false for the commands that answer for
// themselves.
func (c *Conn) dispatch(tag, name string, numKind NumKind, dec *imapwire.Decoder) (sendOK bool, err error) {
	// TODO: handle multiple commands concurrently
	sendOK = true
	switch name {
	case "NOOP", "CHECK":
		err = c.handleNoop(dec)
	case "LOGOUT":
		err = c.handleLogout(dec)
	case "CAPABILITY":
		err = c.handleCapability(dec)
	case "STARTTLS":
		err = c.handleStartTLS(tag, dec)
		sendOK = false
	case "AUTHENTICATE":
		err = c.handleAuthenticate(tag, dec)
		sendOK = false
	case "UNAUTHENTICATE":
		err = c.handleUnauthenticate(dec)
	case "LOGIN":
		err = c.handleLogin(tag, dec)
		sendOK = false
	case "ENABLE":
		err = c.handleEnable(dec)
	case "CREATE":
		err = c.handleCreate(dec)
	case "DELETE":
		err = c.handleDelete(dec)
	case "RENAME":
		err = c.handleRename(dec)
	case "SUBSCRIBE":
		err = c.handleSubscribe(dec)
	case "UNSUBSCRIBE":
		err = c.handleUnsubscribe(dec)
	case "STATUS":
		err = c.handleStatus(dec)
	case "LIST":
		err = c.handleList(dec)
	case "LSUB":
		err = c.handleLSub(dec)
	case "NAMESPACE":
		err = c.handleNamespace(dec)
	case "IDLE":
		err = c.handleIdle(dec)
	case "SELECT", "EXAMINE":
		err = c.batched(func() error { return c.handleSelect(tag, dec, name == "EXAMINE") })
		sendOK = false
	case "CLOSE", "UNSELECT":
		err = c.handleUnselect(dec, name == "CLOSE")
	case "APPEND":
		err = c.handleAppend(tag, dec)
		sendOK = false
	case "FETCH", "UID FETCH":
		err = c.batched(func() error { return c.handleFetch(dec, numKind) })
	case "EXPUNGE":
		err = c.handleExpunge(dec)
	case "UID EXPUNGE":
		err = c.handleUIDExpunge(dec)
	case "STORE", "UID STORE":
		err = c.batched(func() error { return c.handleStore(tag, dec, numKind) })
		sendOK = false
	case "COPY", "UID COPY":
		err = c.handleCopy(tag, dec, numKind)
		sendOK = false
	case "MOVE", "UID MOVE":
		err = c.handleMove(dec, numKind)
	case "SEARCH", "UID SEARCH":
		err = c.handleSearch(tag, dec, numKind)
	case "SORT", "UID SORT": // sealmail: SORT and THREAD.
		err = c.handleSort(dec, numKind)
	case "THREAD", "UID THREAD":
		err = c.handleThread(dec, numKind)
	case "ID": // sealmail: ID and QUOTA.
		err = c.handleID(dec)
	case "GETQUOTA":
		err = c.handleGetQuota(dec)
	case "GETQUOTAROOT":
		err = c.handleGetQuotaRoot(dec)
	case "SETQUOTA":
		err = c.handleSetQuota(dec)
	default:
		err = errUnknownCommand
	}
	return sendOK, err
}

func (c *Conn) handleNoop(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	return nil
}

func (c *Conn) handleLogout(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	c.state = imap.ConnStateLogout

	return c.writeStatusResp("", &imap.StatusResponse{
		Type: imap.StatusResponseTypeBye,
		Text: "Logging out",
	})
}

func (c *Conn) handleDelete(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Delete(name)
}

func (c *Conn) handleRename(dec *imapwire.Decoder) error {
	var oldName, newName string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&oldName) || !dec.ExpectSP() || !dec.ExpectMailbox(&newName) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	var options imap.RenameOptions
	return c.session.Rename(oldName, newName, &options)
}

func (c *Conn) handleSubscribe(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Subscribe(name)
}

func (c *Conn) handleUnsubscribe(dec *imapwire.Decoder) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&name) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	return c.session.Unsubscribe(name)
}

func (c *Conn) checkBufferedLiteral(size int64, nonSync bool) error {
	if size > 4096 {
		// sealmail: [LIMIT] (RFC 5530), answered at once; readCommand reads
		// no further (the client waits for "+") or, for a non-synchronizing
		// literal already on its way, answers BAD and hangs up.
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeLimit,
			Text: "Literals are limited to 4096 bytes for this command",
		}
	}

	return c.acceptLiteral(size, nonSync)
}

func (c *Conn) acceptLiteral(size int64, nonSync bool) error {
	if nonSync && size > 4096 && !c.server.options.caps().Has(imap.CapLiteralPlus) {
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Non-synchronizing literals are limited to 4096 bytes",
		}
	}

	if nonSync {
		return nil
	}

	return c.writeContReq("Ready for literal data")
}

func (c *Conn) canAuth() bool {
	if c.state != imap.ConnStateNotAuthenticated {
		return false
	}
	_, isTLS := c.conn.(*tls.Conn)
	return isTLS || c.server.options.InsecureAuth
}

func (c *Conn) writeStatusResp(tag string, statusResp *imap.StatusResponse) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeStatusResp(enc.Encoder, tag, statusResp)
}

func (c *Conn) writeContReq(text string) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeContReq(enc.Encoder, text)
}

func (c *Conn) writeCapabilityStatus(tag string, typ imap.StatusResponseType, text string) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeCapabilityStatus(enc.Encoder, tag, typ, c.availableCaps(), text)
}

func (c *Conn) checkState(state imap.ConnState) error {
	if state == imap.ConnStateAuthenticated && c.state == imap.ConnStateSelected {
		return nil
	}
	if c.state != state {
		return newClientBugError(fmt.Sprintf("This command is only valid in the %s state", state))
	}
	return nil
}

func (c *Conn) setReadTimeout(dur time.Duration) {
	if dur > 0 {
		c.conn.SetReadDeadline(time.Now().Add(dur))
	} else {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// setWriteTimeout is called with encMutex held. sealmail: a deadline set a
// moment ago for as long is kept (setting one costs more than writing a
// FETCH response); in a batch, the end of a response leaves it for the next
// one, and the batch's end clears it.
func (c *Conn) setWriteTimeout(dur time.Duration) {
	if dur <= 0 {
		if c.batch || c.wdl.IsZero() {
			return
		}
		c.wdl = time.Time{}
		c.conn.SetWriteDeadline(time.Time{})
		return
	}
	t := time.Now().Add(dur)
	if d := t.Sub(c.wdl); d >= 0 && d < dur/10 {
		return
	}
	c.wdl = t
	c.conn.SetWriteDeadline(t)
}

// batchWriterSize is the writer a batch of responses goes through: two TLS
// records' worth.
const batchWriterSize = 32 << 10

var batchWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, batchWriterSize) }}

// batched runs a command whose responses may be many (a FETCH lists one per
// message) with a large writer taken for the command, flushed only when full
// and at the end. sealmail: upstream flushes after every response, so a
// listing of 10,000 envelopes took 10,000 TLS records and writes; the
// connection's own small writer is all an idle connection keeps.
func (c *Conn) batched(handle func() error) error {
	c.encMutex.Lock()
	if c.bw != nil { // what a failed write left behind
		if err := c.bw.Flush(); err != nil {
			c.encMutex.Unlock()
			return err
		}
		c.releaseWriter()
	}
	bw := batchWriters.Get().(*bufio.Writer)
	bw.Reset(c.rw)
	c.bw, c.batch = bw, true
	c.encMutex.Unlock()

	err := handle()

	c.encMutex.Lock()
	defer c.encMutex.Unlock()
	ferr := bw.Flush()
	c.bw, c.batch = nil, false
	c.setWriteTimeout(0)
	bw.Reset(nil)
	batchWriters.Put(bw)
	if err == nil {
		err = ferr
	}
	return err
}

func (c *Conn) poll(cmd string) error {
	switch c.state {
	case imap.ConnStateAuthenticated, imap.ConnStateSelected:
		// nothing to do
	default:
		return nil
	}

	allowExpunge := true
	switch cmd {
	case "FETCH", "STORE", "SEARCH", "SORT", "THREAD": // sealmail: SORT, THREAD as SEARCH
		allowExpunge = false
	}

	w := &UpdateWriter{conn: c, allowExpunge: allowExpunge}
	return c.session.Poll(w, allowExpunge)
}

type responseEncoder struct {
	*imapwire.Encoder
	conn *Conn
}

func newResponseEncoder(conn *Conn) *responseEncoder {
	conn.mutex.Lock()
	quotedUTF8 := conn.enabled.Has(imap.CapIMAP4rev2) || conn.enabled.Has(imap.CapUTF8Accept)
	conn.mutex.Unlock()

	conn.encMutex.Lock() // released by responseEncoder.end
	// sealmail: bw is read under encMutex, which guards its swap in batched
	// and its release in end.
	if conn.bw == nil {
		conn.bw = writers.Get().(*bufio.Writer)
		conn.bw.Reset(conn.rw)
	}
	wireEnc := imapwire.NewEncoder(conn.bw, imapwire.ConnSideServer)
	wireEnc.QuotedUTF8 = quotedUTF8
	wireEnc.HoldFlush = conn.batch
	conn.setWriteTimeout(respWriteTimeout)
	return &responseEncoder{
		Encoder: wireEnc,
		conn:    conn,
	}
}

func (enc *responseEncoder) end() {
	if enc.Encoder == nil {
		panic("imapserver: responseEncoder.end called twice")
	}
	enc.Encoder = nil
	enc.conn.setWriteTimeout(0)
	enc.conn.releaseWriter()
	enc.conn.encMutex.Unlock()
}

// releaseWriter gives the connection's writer back to the pool once it has
// sent everything (sealmail), outside a batch. Called with encMutex held.
func (c *Conn) releaseWriter() {
	if c.batch || c.bw == nil || c.bw.Buffered() > 0 {
		return
	}
	c.bw.Reset(nil)
	writers.Put(c.bw)
	c.bw = nil
}

func (enc *responseEncoder) Literal(size int64) io.WriteCloser {
	enc.conn.setWriteTimeout(literalWriteTimeout)
	return literalWriter{
		WriteCloser: enc.Encoder.Literal(size, nil),
		conn:        enc.conn,
	}
}

type literalWriter struct {
	io.WriteCloser
	conn *Conn
}

func (lw literalWriter) Close() error {
	lw.conn.setWriteTimeout(respWriteTimeout)
	return lw.WriteCloser.Close()
}

func writeStatusResp(enc *imapwire.Encoder, tag string, statusResp *imap.StatusResponse) error {
	if tag == "" {
		tag = "*"
	}
	enc.Atom(tag).SP().Atom(string(statusResp.Type)).SP()
	if statusResp.Code != "" {
		enc.Atom(fmt.Sprintf("[%v]", statusResp.Code)).SP()
	}
	enc.Text(statusResp.Text)
	return enc.CRLF()
}

func writeCapabilityOK(enc *imapwire.Encoder, tag string, caps []imap.Cap, text string) error {
	return writeCapabilityStatus(enc, tag, imap.StatusResponseTypeOK, caps, text)
}

func writeCapabilityStatus(enc *imapwire.Encoder, tag string, typ imap.StatusResponseType, caps []imap.Cap, text string) error {
	if tag == "" {
		tag = "*"
	}

	enc.Atom(tag).SP().Atom(string(typ)).SP().Special('[').Atom("CAPABILITY")
	for _, c := range caps {
		enc.SP().Atom(string(c))
	}
	enc.Special(']').SP().Text(text)
	return enc.CRLF()
}

func writeContReq(enc *imapwire.Encoder, text string) error {
	enc.HoldFlush = false // sealmail: the client waits for it, even in a batch
	return enc.Atom("+").SP().Text(text).CRLF()
}

func newClientBugError(text string) error {
	return &imap.Error{
		Type: imap.StatusResponseTypeBad,
		Code: imap.ResponseCodeClientBug,
		Text: text,
	}
}

// UpdateWriter writes status updates.
type UpdateWriter struct {
	conn         *Conn
	allowExpunge bool
}

// WriteExpunge writes an EXPUNGE response.
func (w *UpdateWriter) WriteExpunge(seqNum uint32) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: EXPUNGE updates are not allowed in this context")
	}
	return w.conn.writeExpunge(seqNum)
}

// WriteNumMessages writes an EXISTS response.
func (w *UpdateWriter) WriteNumMessages(n uint32) error {
	return w.conn.writeExists(n)
}

// WriteNumRecent writes an RECENT response (not used in IMAP4rev2, will be ignored).
func (w *UpdateWriter) WriteNumRecent(n uint32) error {
	if w.conn.enabled.Has(imap.CapIMAP4rev2) || !w.conn.server.options.caps().Has(imap.CapIMAP4rev1) {
		return nil
	}
	return w.conn.writeObsoleteRecent(n)
}

// WriteMailboxFlags writes a FLAGS response.
func (w *UpdateWriter) WriteMailboxFlags(flags []imap.Flag) error {
	return w.conn.writeFlags(flags)
}

// WriteMessageFlags writes a FETCH response with FLAGS.
func (w *UpdateWriter) WriteMessageFlags(seqNum uint32, uid imap.UID, flags []imap.Flag) error {
	fetchWriter := &FetchWriter{conn: w.conn}
	respWriter := fetchWriter.CreateMessage(seqNum)
	if uid != 0 {
		respWriter.WriteUID(uid)
	}
	respWriter.WriteFlags(flags)
	return respWriter.Close()
}
