package mimetree

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestSplitHeader(t *testing.T) {
	for _, c := range []struct{ raw, header, body string }{
		{"A: 1\r\n\r\nbody", "A: 1\r\n\r\n", "body"},
		{"A: 1\n\nbody\n", "A: 1\n\n", "body\n"},
		{"A: 1\r\nno colon\r\nB: 2\r\n\r\nbody", "A: 1\r\nno colon\r\nB: 2\r\n\r\n", "body"},
		{"\r\nbody", "\r\n", "body"},
		{"A: 1\r\nno empty line", "A: 1\r\nno empty line", ""},
		{"", "", ""},
	} {
		h, b := SplitHeader([]byte(c.raw))
		if string(h) != c.header || string(b) != c.body {
			t.Errorf("SplitHeader(%q) = %q, %q; want %q, %q", c.raw, h, b, c.header, c.body)
		}
	}
}

func TestFields(t *testing.T) {
	h := " lead\r\nSubject: a\r\n b\r\nno colon here\r\nX Bad Key : v\r\nFrom:x@y\r\n\r\n"
	fs := Fields([]byte(h))
	want := []Field{
		{Name: "", Raw: []byte(" lead\r\n")},
		{Name: "Subject", Raw: []byte("Subject: a\r\n b\r\n"), Colon: true},
		{Name: "no colon here", Raw: []byte("no colon here\r\n")},
		{Name: "X Bad Key", Raw: []byte("X Bad Key : v\r\n"), Colon: true},
		{Name: "From", Raw: []byte("From:x@y\r\n"), Colon: true},
	}
	if len(fs) != len(want) {
		t.Fatalf("Fields = %+v", fs)
	}
	for i := range fs {
		if fs[i].Name != want[i].Name || !bytes.Equal(fs[i].Raw, want[i].Raw) || fs[i].Colon != want[i].Colon {
			t.Errorf("field %d = %+v, want %+v", i, fs[i], want[i])
		}
	}
	if v := fs[1].Value(); v != "a b" {
		t.Errorf("folded value = %q", v)
	}
	hd := Header(fs)
	if hd.Get("Subject") == "" || hd.Get("From") != "x@y" || hd.Len() != 3 {
		t.Errorf("go-message header: %v", hd.Map())
	}
}

func TestSplitMultipart(t *testing.T) {
	body := "preamble\r\n--b\r\none\r\n--b1\r\n--b  \r\ntwo\n--b--\r\nepilogue"
	parts := SplitMultipart([]byte(body), "b")
	if len(parts) != 2 || string(parts[0]) != "one\r\n--b1" || string(parts[1]) != "two" {
		t.Errorf("parts = %q", parts)
	}
	// No close delimiter: the last part runs to the end.
	parts = SplitMultipart([]byte("--b\r\nA: 1\r\n\r\nx\r\n--b\r\n\r\ny"), "b")
	if len(parts) != 2 || string(parts[1]) != "\r\ny" {
		t.Errorf("unterminated: %q", parts)
	}
	// A boundary inside a line is not a delimiter.
	if parts := SplitMultipart([]byte("x--b\r\n--b\r\nz"), "b"); len(parts) != 1 || string(parts[0]) != "z" {
		t.Errorf("mid-line: %q", parts)
	}
}

func TestLimits(t *testing.T) {
	deep := "Content-Type: text/plain\r\n\r\nbottom\r\n"
	for i := range MaxDepth + 20 {
		deep = fmt.Sprintf("Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n", i, i, deep, i)
	}
	n := Parse([]byte(deep))
	depth := 0
	for ; len(n.Children) > 0; n = n.Children[0] {
		depth++
	}
	if depth != MaxDepth || !n.Opaque || n.Type != "application" || !bytes.Contains(n.Body, []byte("bottom")) {
		t.Errorf("depth %d, bottom %+v", depth, n)
	}

	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := range MaxParts + 10 {
		fmt.Fprintf(&b, "--x\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--x--\r\n")
	n = Parse([]byte(b.String()))
	last := n.Children[len(n.Children)-1]
	if len(n.Children) != MaxParts-1 || !last.Opaque || !bytes.HasSuffix(last.Body, []byte(fmt.Sprintf("part %d", MaxParts+9))) {
		t.Errorf("%d parts, last %q", len(n.Children), last.Body[max(0, len(last.Body)-40):])
	}
}

func TestPart(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n\r\none\r\n--X\r\nContent-Type: message/rfc822\r\n\r\n" +
		"Content-Type: multipart/alternative; boundary=Y\r\n\r\n--Y\r\n\r\ntwo-one\r\n--Y\r\n\r\ntwo-two\r\n--Y--\r\n--X\r\n" +
		"Content-Type: multipart/digest; boundary=Z\r\n\r\n--Z\r\n\r\nSubject: digested\r\n\r\nthree-one\r\n--Z--\r\n--X--\r\n"
	root := Parse([]byte(raw))
	for _, c := range []struct {
		path []int
		body string
	}{
		{[]int{1}, "one"},
		{[]int{2, 1}, "two-one"},
		{[]int{2, 2}, "two-two"},
		{[]int{3, 1}, "Subject: digested\r\n\r\nthree-one"}, // message/rfc822 by default in a digest
		{[]int{3, 1, 1}, "three-one"},
		{[]int{1, 1}, "one"},
	} {
		p := root.Part(c.path)
		if p == nil || string(p.Body) != c.body {
			t.Errorf("Part(%v) = %+v, want body %q", c.path, p, c.body)
		}
	}
	for _, path := range [][]int{{0}, {4}, {1, 2}, {2, 3}} {
		if p := root.Part(path); p != nil {
			t.Errorf("Part(%v) = %q, want none", path, p.Body)
		}
	}
}
