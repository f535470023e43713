package smtp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"
)

var ErrTooLongLine = errors.New("smtp: too long a line in input stream")

// lineLimitReader reads from the underlying Reader but restricts
// line length of lines in input stream to a certain length.
//
// If line length exceeds the limit - Read returns ErrTooLongLine
type lineLimitReader struct {
	R         io.Reader
	LineLimit int
	// sealmail: Rate, while a message is read, moves the read deadline by how
	// much of it came.
	Rate *dataRate

	curLineLength int
}

func (r *lineLimitReader) Read(b []byte) (int, error) {
	if r.curLineLength > r.LineLimit && r.LineLimit > 0 {
		return 0, ErrTooLongLine
	}

	if r.Rate != nil {
		r.Rate.conn.SetReadDeadline(r.Rate.deadline())
	}
	n, err := r.R.Read(b)
	if r.Rate != nil {
		r.Rate.n += int64(n)
	}
	if err != nil {
		return n, err
	}

	if r.LineLimit == 0 {
		return n, nil
	}

	// sealmail: the same count as a loop over every byte, a line at a time.
	// A newline counts as the first byte of the line it starts.
	p := b[:n]
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.curLineLength += len(p)
			break
		}
		if r.curLineLength += i; r.curLineLength > r.LineLimit {
			return 0, ErrTooLongLine // and again at every later Read
		}
		r.curLineLength = 1
		p = p[i+1:]
	}
	if r.curLineLength > r.LineLimit {
		return 0, ErrTooLongLine
	}

	return n, nil
}

// sealmail: dataRate bounds how slowly a client may send a message (DATA, or
// all of a BDAT transfer): after a grace period the bytes must have come at
// Server.MinDataRate on average since the start, and no read may wait longer
// than Server.ReadTimeout. Upstream gives a whole message the ReadTimeout of
// its DATA command, which cuts off a large message on a slow link; a deadline
// pushed back at every read instead lets a byte every few seconds hold the
// connection for ever.
type dataRate struct {
	conn  net.Conn
	min   int64 // bytes per second
	grace time.Duration
	idle  time.Duration
	start time.Time
	n     int64
}

func (d *dataRate) deadline() time.Time {
	earned := time.Duration(float64(d.n) / float64(d.min) * float64(time.Second))
	if earned < d.grace {
		earned = d.grace
	}
	t := d.start.Add(earned)
	if d.idle > 0 {
		if idle := time.Now().Add(d.idle); idle.Before(t) {
			t = idle
		}
	}
	return t
}
