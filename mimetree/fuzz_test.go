package mimetree

import (
	"bytes"
	"io"
	"maps"
	"testing"
)

// FuzzParse checks that any input parses without panicking, that every
// part is a slice of the input, that a part's header and body are adjacent
// and its fields cover its header, and that every path to a part finds it.
// Seeds (and inputs the fuzzer found) are in testdata/fuzz/FuzzParse and run
// in every go test; `go test -fuzz FuzzParse ./mimetree` searches for more.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Subject: a\r\n\r\nbody\r\n",
		"Subject: a\r\nno colon\r\n\r\nbody",
		" lead\r\nX Bad: 1\r\n",
		"Content-Type: multipart/mixed; boundary=X\r\n\r\npre\r\n--X\r\nContent-Type: text/plain\r\nbroken\r\n\r\none\r\n--X\r\n" +
			"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner\r\n--X--\r\nepi\r\n",
		"Content-Type: multipart/digest; boundary=Z\r\n\r\n--Z\r\n\r\nSubject: d\r\n\r\nx\r\n--Z--\r\n",
		"Content-Type: multipart/mixed; boundary=\"a b\"\n\n--a b\n\n--a b--",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=q\r\n\r\n--q\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		root := Parse(raw)
		seen := map[*Node]bool{}
		check := func(n *Node, path []int) {
			seen[n] = true
			if len(seen) > MaxParts {
				t.Fatalf("more than %d parts", MaxParts)
			}
			for _, b := range [][]byte{n.Header, n.Body} {
				if len(b) > 0 && (cap(b) > cap(raw) || cap(raw)-cap(b)+len(b) > len(raw)) {
					t.Fatalf("part at %v is not a slice of the input", path)
				}
			}
			if len(n.Header) > 0 && len(n.Body) > 0 && cap(n.Header)-len(n.Header) != cap(n.Body) {
				t.Fatalf("part at %v: header and body not adjacent", path)
			}
			var fields []byte
			for _, f := range n.Fields {
				fields = append(fields, f.Raw...)
			}
			if rest := string(n.Header[min(len(fields), len(n.Header)):]); !bytes.HasPrefix(n.Header, fields) || rest != "" && rest != "\n" && rest != "\r\n" {
				t.Fatalf("part at %v: fields %q do not cover header %q", path, fields, n.Header)
			}
			if n.Type == "" || n.Subtype == "" {
				t.Fatalf("part at %v without a type", path)
			}
		}
		with := func(path []int, i int) []int { return append(path[:len(path):len(path)], i) }
		// message visits a message (the input, or one inside a message/rfc822
		// part at path), part a part of it: IMAP numbers them so.
		var message, part func(n *Node, path []int)
		message = func(n *Node, path []int) {
			check(n, path)
			if !n.IsMultipart() || len(n.Children) == 0 {
				part(n, with(path, 1))
				return
			}
			for i, c := range n.Children {
				part(c, with(path, i+1))
			}
		}
		part = func(n *Node, path []int) {
			if got := root.Part(path); got != n {
				t.Fatalf("Part(%v) does not find the part", path)
			}
			check(n, path)
			switch {
			case n.IsMessage():
				message(n.Children[0], path)
			case n.IsMultipart():
				for i, c := range n.Children {
					part(c, with(path, i+1))
				}
			}
		}
		message(root, nil)
		for _, size := range []int{16, 64 << 10} {
			lineBuffer = size
			at, err := ParseAt(bytes.NewReader(raw), int64(len(raw)))
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, at, root, nil)
		}
	})
}

// sameTree checks that a tree parsed by ParseAt is the tree Parse gave.
func sameTree(t *testing.T, at, mem *Node, path []int) {
	t.Helper()
	if !bytes.Equal(at.Header, mem.Header[:min(len(mem.Header), MaxHeader)]) || at.BodyStart != mem.BodyStart || at.End != mem.End ||
		at.Type != mem.Type || at.Subtype != mem.Subtype || at.Opaque != mem.Opaque || !maps.Equal(at.Params, mem.Params) ||
		len(at.Children) != len(mem.Children) || len(at.Fields) != len(mem.Fields) {
		t.Fatalf("ParseAt, part %v: %+v\nParse: %+v", path, at, mem)
	}
	if int64(len(mem.Body)) != mem.BodySize() || mem.BodyStart+mem.BodySize() != mem.End {
		t.Fatalf("Parse, part %v: body %d bytes from %d to %d", path, len(mem.Body), mem.BodyStart, mem.End)
	}
	body, err := io.ReadAll(at.BodyReader())
	if err != nil || !bytes.Equal(body, mem.Body) {
		t.Fatalf("ParseAt, part %v: body %q (%v), want %q", path, body, err, mem.Body)
	}
	la, err := at.Lines()
	if lm, _ := mem.Lines(); err != nil || la != lm {
		t.Fatalf("ParseAt, part %v: %d lines (%v), want %d", path, la, err, lm)
	}
	for i := range at.Children {
		sameTree(t, at.Children[i], mem.Children[i], append(path[:len(path):len(path)], i+1))
	}
}
