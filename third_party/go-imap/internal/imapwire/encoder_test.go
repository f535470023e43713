package imapwire

import (
	"bufio"
	"strings"
	"testing"
)

// sealmail: the encoder writes specials, numbers and quoted strings straight
// into its buffer; what it writes must not change.
func TestEncoderWrites(t *testing.T) {
	var sb strings.Builder
	bw := bufio.NewWriterSize(&sb, 16) // smaller than what is written: numbers cross a flush
	enc := NewEncoder(bw, ConnSideServer)
	enc.Special('(').Number(7).SP().Number(4294967295).SP().Number64(-12).SP().ModSeq(18446744073709551615).SP()
	enc.Quoted(`plain`).SP().Quoted(`a "quoted" \ back\slash`).SP().Quoted(``).SP().Quoted(`\`).SP().String("Nguyễn").Special(')')
	if err := enc.CRLF(); err != nil {
		t.Fatal(err)
	}
	want := `(7 4294967295 -12 18446744073709551615 "plain" "a \"quoted\" \\ back\\slash" "" "\\" {8}` + "\r\nNguyễn)\r\n"
	if got := sb.String(); got != want {
		t.Errorf("wrote\n%q\nwant\n%q", got, want)
	}
}

// sealmail: HoldFlush leaves the response in the buffer.
func TestEncoderHoldFlush(t *testing.T) {
	var sb strings.Builder
	bw := bufio.NewWriterSize(&sb, 4096)
	enc := NewEncoder(bw, ConnSideServer)
	enc.HoldFlush = true
	if err := enc.Atom("* OK").CRLF(); err != nil {
		t.Fatal(err)
	}
	if sb.Len() != 0 || bw.Buffered() != 6 {
		t.Fatalf("held response: %d bytes written, %d buffered", sb.Len(), bw.Buffered())
	}
	enc.HoldFlush = false
	if err := enc.Atom("* OK").CRLF(); err != nil || sb.String() != "* OK\r\n* OK\r\n" {
		t.Fatalf("%q %v", sb.String(), err)
	}
}
