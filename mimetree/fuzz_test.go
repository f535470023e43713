package mimetree

import (
	"bytes"
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
	})
}
