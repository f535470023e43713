package mailstore

import (
	"encoding/binary"
	"errors"
	"time"
)

// Envelopes are stored in a small binary form rather than JSON: a client listing
// a 10,000-message mailbox decodes 10,000 of them, and JSON's reflection made that
// the larger part of the cost. The format is a version byte, the date as unix
// nanoseconds with its zone offset, then length-prefixed strings and lists.
const envelopeVersion = 1

func encodeEnvelope(e *Envelope) []byte {
	b := make([]byte, 0, 256)
	b = append(b, envelopeVersion)
	var nanos int64
	var offset int
	if !e.Date.IsZero() {
		nanos = e.Date.UnixNano()
		_, offset = e.Date.Zone()
	}
	b = binary.AppendVarint(b, nanos)
	b = binary.AppendVarint(b, int64(offset))
	b = appendString(b, e.Subject)
	for _, l := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, a := range l {
			b = appendString(b, a.Name)
			b = appendString(b, a.Mailbox)
			b = appendString(b, a.Host)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.InReplyTo)))
	for _, s := range e.InReplyTo {
		b = appendString(b, s)
	}
	return appendString(b, e.MessageID)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("corrupt envelope")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errCorrupt, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a list length, bounded by what the remaining bytes could hold.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	return int(n)
}

func decodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) == 0 || b[0] != envelopeVersion {
		return nil, errCorrupt
	}
	d := &decoder{b: b[1:]}
	e := new(Envelope)
	nanos, offset := d.varint(), d.varint()
	if nanos != 0 {
		e.Date = time.Unix(0, nanos).In(time.FixedZone("", int(offset)))
	}
	e.Subject = d.string()
	for _, l := range []*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		n := d.count()
		if n == 0 {
			continue
		}
		*l = make([]Address, n)
		for i := range *l {
			(*l)[i] = Address{Name: d.string(), Mailbox: d.string(), Host: d.string()}
		}
	}
	if n := d.count(); n > 0 {
		e.InReplyTo = make([]string, n)
		for i := range e.InReplyTo {
			e.InReplyTo[i] = d.string()
		}
	}
	e.MessageID = d.string()
	return e, d.err
}
