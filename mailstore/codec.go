package mailstore

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// Envelopes are stored in a small binary form rather than JSON: a client listing
// a 10,000-message mailbox decodes 10,000 of them, and JSON's reflection made that
// the larger part of the cost. The format is a version byte, the date as unix
// nanoseconds with its zone offset, then length-prefixed strings and lists.
//
// Version 2 added the Date: field as sent and address lists with group
// markers, version 3 References (for THREAD, which would otherwise read every
// message's content). Older rows still decode (members of groups flattened, no
// raw date, no References); the indexer re-parses them in the background
// (upgradeEnvelopes). A version 3 envelope may end with the obsolete source
// routes of its addresses (RFC 5322 obs-route, "<@relay:user@host>"), as
// (list, address, route) triples after References: rare enough that the rows
// without them need no new version.
const envelopeVersion = 3

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
	b = appendString(b, e.DateRaw)
	b = appendString(b, e.Subject)
	for _, l := range e.lists() {
		b = binary.AppendUvarint(b, uint64(len(*l)))
		for _, a := range *l {
			b = appendString(b, a.Name)
			b = appendString(b, a.Mailbox)
			b = appendString(b, a.Host)
		}
	}
	b = appendStrings(b, e.InReplyTo)
	b = appendString(b, e.MessageID)
	b = appendStrings(b, e.References)
	var routes []byte
	n := 0
	for i, l := range e.lists() {
		for j, a := range *l {
			if a.Route != "" {
				routes = binary.AppendUvarint(routes, uint64(i))
				routes = binary.AppendUvarint(routes, uint64(j))
				routes = appendString(routes, a.Route)
				n++
			}
		}
	}
	if n > 0 {
		b = binary.AppendUvarint(b, uint64(n))
		b = append(b, routes...)
	}
	return b
}

// lists are e's address lists in the order the codec writes them.
func (e *Envelope) lists() []*[]Address {
	return []*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc}
}

func appendStrings(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("corrupt envelope")

// decoder reads b, whose bytes s holds as a string: every field is a
// substring of s, so an envelope costs one allocation for its text instead
// of one per field.
type decoder struct {
	b   []byte
	s   string
	err error
}

func (d *decoder) fail() {
	d.err, d.b = errCorrupt, nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	at := len(d.s) - len(d.b)
	d.b = d.b[n:]
	return d.s[at : at+int(n)]
}

// count reads a list length, bounded by what the remaining bytes could hold.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func decodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) == 0 || b[0] < 1 || b[0] > envelopeVersion {
		return nil, errCorrupt
	}
	d := &decoder{b: b[1:], s: string(b[1:])}
	e := new(Envelope)
	nanos, offset := d.varint(), d.varint()
	if nanos != 0 {
		e.Date = time.Unix(0, nanos).In(zone(offset))
	}
	if b[0] >= 2 {
		e.DateRaw = d.string()
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
	e.InReplyTo = d.strings()
	e.MessageID = d.string()
	if b[0] >= 3 {
		e.References = d.strings()
	}
	if len(d.b) > 0 && d.err == nil {
		lists := e.lists()
		for n := d.count(); n > 0 && d.err == nil; n-- {
			i, j, route := d.uvarint(), d.uvarint(), d.string()
			if i >= uint64(len(lists)) || j >= uint64(len(*lists[i])) {
				d.fail()
				break
			}
			(*lists[i])[j].Route = route
		}
	}
	return e, d.err
}

func (d *decoder) strings() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.string()
	}
	return l
}

// zones holds the fixed zones of whole quarter hours, which are all that real
// mail carries; time.FixedZone allocates, and a listing would otherwise make
// one per message. Other offsets get a zone of their own.
var zones sync.Map // offset in seconds → *time.Location

func zone(offset int64) *time.Location {
	if offset%(15*60) != 0 || offset < -24*3600 || offset > 24*3600 {
		return time.FixedZone("", int(offset))
	}
	if z, ok := zones.Load(offset); ok {
		return z.(*time.Location)
	}
	z, _ := zones.LoadOrStore(offset, time.FixedZone("", int(offset)))
	return z.(*time.Location)
}
