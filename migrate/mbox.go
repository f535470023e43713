package migrate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sealmail/mailstore"
)

// An mbox is messages one after the other, each starting with a line
// "From SENDER DATE" and ending with an empty line. A line of a message that
// starts with "From " is written ">From "; mboxrd also quotes ">From " as
// ">>From " and so on, so that reading takes one '>' off any ">...>From "
// line. mboxo quoted only "From ": reading mboxo as mboxrd changes only lines
// that began with ">From " in the original, which is rare, so mboxrd is how
// this package reads and writes.
//
// Flags live in headers the mail programs add: Status (R read, O old),
// X-Status (A answered, F flagged, T draft, D deleted) and X-Keywords. They are
// the mbox's bookkeeping, not the message's, so import takes them out (as
// Dovecot does when it reads an mbox) and export puts them back in.

// mboxHeaders are the bookkeeping headers an import takes out of messages.
var mboxHeaders = []string{"Status", "X-Status", "X-Keywords", "X-UID", "X-IMAP", "X-IMAPbase"}

// Mbox copies the messages of the mbox file into the folder of d.
func Mbox(ctx context.Context, file, folder string, d Dest, opt Options) (Summary, error) {
	r := &run{opt: opt}
	file, err := filepath.Abs(file)
	if err != nil {
		return r.sum, err
	}
	folder = mailstore.CanonicalName(folder)
	fh, err := os.Open(file)
	if err != nil {
		return r.sum, err
	}
	defer fh.Close()
	if r.total, err = countMbox(fh); err != nil {
		return r.sum, err
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return r.sum, err
	}
	r.folder(folder)
	if err := createFolder(ctx, d, folder); err != nil {
		return r.sum, err
	}
	// The folder is part of the source: the same file imported into
	// another folder is another import.
	source := "mbox:" + file + "#" + folder
	done, err := d.Store.Imported(ctx, d.Account.ID, source)
	if err != nil {
		return r.sum, err
	}
	seen := map[[32]byte]int{} // how often each content came so far
	err = readMbox(fh, func(m mboxMessage) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if m.pseudo {
			r.done++
			return nil
		}
		sum := sha256.Sum256(m.content)
		seen[sum]++
		item := hex.EncodeToString(sum[:]) + "#" + strconv.Itoa(seen[sum])
		if _, ok := done[item]; ok {
			r.done++
			r.sum.Skipped++
			r.report()
			return nil
		}
		return r.put(ctx, d, folder, message{content: m.content, flags: m.flags, date: m.date,
			origin: mailstore.Origin{Source: source, Item: item}})
	})
	return r.sum, err
}

// countMbox counts the messages of an mbox, checking that it is one.
func countMbox(rd io.Reader) (int, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	n := 0
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if first && len(line) > 0 {
			if !bytes.HasPrefix(line, []byte("From ")) {
				return 0, errors.New("not an mbox file: it does not start with a \"From \" line")
			}
			first = false
		}
		if bytes.HasPrefix(line, []byte("From ")) {
			n++
		}
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n') // the rest of a long line
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

type mboxMessage struct {
	content []byte // CRLF, without the bookkeeping headers
	flags   []string
	date    time.Time
	pseudo  bool // the "FOLDER INTERNAL DATA" message UW IMAP and Dovecot keep first
}

// readMbox calls fn for each message of rd, in order.
func readMbox(rd io.Reader, fn func(mboxMessage) error) error {
	br := bufio.NewReaderSize(rd, 64<<10)
	var from string
	var buf []byte
	flush := func() error {
		if from == "" {
			return nil
		}
		// The empty line before the next From line belongs to the mbox.
		switch {
		case bytes.HasSuffix(buf, []byte("\r\n\r\n")):
			buf = buf[:len(buf)-2]
		case bytes.HasSuffix(buf, []byte("\n\n")):
			buf = buf[:len(buf)-1]
		}
		m := parseMboxMessage(from, buf)
		buf = buf[:0]
		return fn(m)
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if bytes.HasPrefix(line, []byte("From ")) {
				if err := flush(); err != nil {
					return err
				}
				from = strings.TrimRight(string(line[5:]), "\r\n")
			} else {
				if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
					line = line[1:]
				}
				buf = append(buf, line...)
			}
		}
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return err
		}
	}
}

// parseMboxMessage takes the bookkeeping headers out of raw and reads its
// flags from them, its date from the From line (else its Date header).
func parseMboxMessage(from string, raw []byte) mboxMessage {
	var m mboxMessage
	var kept, header []byte
	var name string
	rest := raw
	take := func() {
		switch {
		case name == "":
		case strings.EqualFold(name, "Status"):
			if strings.Contains(headerValue(header), "R") {
				m.flags = append(m.flags, `\Seen`)
			}
		case strings.EqualFold(name, "X-Status"):
			v := headerValue(header)
			for _, f := range []struct{ c, flag string }{{"A", `\Answered`}, {"F", `\Flagged`}, {"T", `\Draft`}, {"D", `\Deleted`}} {
				if strings.Contains(v, f.c) {
					m.flags = append(m.flags, f.flag)
				}
			}
		case strings.EqualFold(name, "X-Keywords"):
			m.flags = append(m.flags, strings.FieldsFunc(headerValue(header), func(r rune) bool {
				return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
			})...)
		case strings.EqualFold(name, "X-IMAP"):
			m.pseudo = true
		}
		if !slices.ContainsFunc(mboxHeaders, func(h string) bool { return strings.EqualFold(h, name) }) {
			kept = append(kept, header...)
		}
		header, name = nil, ""
	}
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the end of the header
		}
		rest = rest[len(line):]
		if line[0] == ' ' || line[0] == '\t' {
			header = append(header, line...)
			continue
		}
		take()
		header = line
		if n, _, ok := bytes.Cut(line, []byte(":")); ok {
			name = strings.TrimSpace(string(n))
		}
	}
	take()
	m.content = crlf(append(kept, rest...))
	m.date = mboxDate(from)
	if m.date.IsZero() {
		if msg, err := mail.ReadMessage(bytes.NewReader(m.content)); err == nil {
			m.date, _ = msg.Header.Date()
		}
	}
	return m
}

func headerValue(h []byte) string {
	_, v, _ := strings.Cut(string(h), ":")
	return strings.TrimSpace(v)
}

// mboxDate reads the date of a From line's "SENDER DATE": asctime, in local
// time, sometimes with a zone.
func mboxDate(from string) time.Time {
	_, date, ok := strings.Cut(strings.TrimSpace(from), " ")
	if !ok {
		return time.Time{}
	}
	date = strings.Join(strings.Fields(date), " ")
	for _, layout := range []string{"Mon Jan 2 15:04:05 2006", "Mon Jan 2 15:04:05 -0700 2006", "Mon Jan 2 15:04:05 MST 2006", "Mon Jan 2 15:04 2006"} {
		if t, err := time.ParseInLocation(layout, date, time.Local); err == nil {
			return t
		}
	}
	return time.Time{}
}

// ExportMbox writes the messages of the folder of account a into the new
// file path; with folder "", every folder, each into PATH/NAME.mbox (a folder
// "A/B" into PATH/A/B.mbox).
func ExportMbox(ctx context.Context, s *mailstore.Store, a mailstore.Account, path, folder string, opt Options) (Summary, error) {
	r := &run{opt: opt}
	mbs, err := exportMailboxes(ctx, s, a, r)
	if err != nil {
		return r.sum, err
	}
	if folder != "" {
		folder = mailstore.CanonicalName(folder)
		i := slices.IndexFunc(mbs, func(mb mailstore.Mailbox) bool { return mb.Name == folder })
		if i < 0 {
			return r.sum, fmt.Errorf("%s has no folder %q", a.Address, folder)
		}
		st, err := s.MailboxStatus(ctx, mbs[i].ID)
		if err != nil {
			return r.sum, err
		}
		r.total = int(st.Messages)
		return r.sum, r.exportMbox(ctx, s, mbs[i], path)
	}
	if err := newExportDir(path); err != nil {
		return r.sum, err
	}
	for _, mb := range mbs {
		file := filepath.Join(path, filepath.FromSlash(mb.Name)+".mbox")
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return r.sum, err
		}
		if err := r.exportMbox(ctx, s, mb, file); err != nil {
			return r.sum, err
		}
	}
	return r.sum, nil
}

func (r *run) exportMbox(ctx context.Context, s *mailstore.Store, mb mailstore.Mailbox, file string) error {
	r.folder(mb.Name)
	fh, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(fh, 64<<10)
	err = s.Fetch(ctx, mb.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
		if it.Err != nil {
			r.failed("", mb.Name, strconv.FormatUint(uint64(it.UID), 10), it.Err)
			return nil
		}
		writeMboxMessage(w, it)
		r.done++
		r.sum.Messages++
		r.sum.Bytes += int64(len(it.Content))
		r.report()
		return nil
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("exporting %s to %s: %w", mb.Name, file, err)
	}
	return nil
}

// writeMboxMessage writes one message in mboxrd, its flags in the
// bookkeeping headers at the end of its header.
func writeMboxMessage(w *bufio.Writer, it mailstore.Item) {
	content := lf(it.Content)
	sender := "MAILER-DAEMON"
	if msg, err := mail.ReadMessage(bytes.NewReader(content)); err == nil {
		if a, err := mail.ParseAddress(msg.Header.Get("Return-Path")); err == nil && a.Address != "" && !strings.ContainsAny(a.Address, " \t") {
			sender = a.Address
		}
	}
	fmt.Fprintf(w, "From %s %s\n", sender, it.InternalDate.In(time.Local).Format(time.ANSIC))
	head, body := content, []byte(nil)
	if i := bytes.Index(content, []byte("\n\n")); i >= 0 {
		head, body = content[:i+1], content[i+1:]
	} else if bytes.HasPrefix(content, []byte("\n")) {
		head, body = nil, content
	}
	writeQuoted(w, head)
	status, xstatus := "O", ""
	for _, f := range []struct{ flag, c string }{{`\Answered`, "A"}, {`\Flagged`, "F"}, {`\Draft`, "T"}, {`\Deleted`, "D"}} {
		if slices.Contains(it.Flags, f.flag) {
			xstatus += f.c
		}
	}
	if slices.Contains(it.Flags, `\Seen`) {
		status = "RO"
	}
	fmt.Fprintf(w, "Status: %s\n", status)
	if xstatus != "" {
		fmt.Fprintf(w, "X-Status: %s\n", xstatus)
	}
	var kws []string
	for _, f := range it.Flags {
		if !strings.HasPrefix(f, `\`) {
			kws = append(kws, f)
		}
	}
	if len(kws) > 0 {
		fmt.Fprintf(w, "X-Keywords: %s\n", strings.Join(kws, " "))
	}
	writeQuoted(w, body)
	if len(content) > 0 && content[len(content)-1] != '\n' {
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
}

// writeQuoted writes b, quoting its From lines the mboxrd way.
func writeQuoted(w *bufio.Writer, b []byte) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
			w.WriteByte('>')
		}
		w.Write(line)
		b = b[len(line):]
	}
}
