package registry

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkOutgoing10MB measures what a clerk's submission of a 10 MB
// document costs before it can be queued: numbering, stamping, verifying
// the stamp, filing the copy and the acceptance receipt, and the register
// and evidence writes. signing's BenchmarkStamp and BenchmarkVerify measure
// the cryptography alone.
func BenchmarkOutgoing10MB(b *testing.B) {
	x := newExchange(b)
	a := x.a
	msg := docMessage(b, a.domain.OfficialAddress, x.b.staff.Address, subject, file{"cv.pdf", signedPDF(b, 1, 10<<20)})
	old := []byte(header(b, msg, "Message-Id"))
	x.hold = true // sealing only: what is queued for b.test stays queued
	b.SetBytes(int64(len(msg)))
	n := 0
	for b.Loop() {
		n++
		id := fmt.Appendf(nil, "<%0*d>", len(old)-2, n)
		if _, err := x.outgoing(a, a.clerk, []string{x.b.staff.Address}, bytes.Replace(msg, old, id, 1)); err != nil {
			b.Fatal(err)
		}
	}
}
