package signing

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSplitMultipart(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // nil: error
	}{
		{"plain", "--b\r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n", []string{"A: 1\r\n\r\none", "\r\ntwo"}},
		{"preamble and epilogue", "pre\r\n--b\r\n\r\none\r\n--b--\r\nepi", []string{"\r\none"}},
		{"padding after delimiter", "--b  \r\n\r\none\r\n--b-- \r\n", []string{"\r\none"}},
		{"longer boundary is content", "--b\r\n\r\n--bb\r\n--b--", []string{"\r\n--bb"}},
		{"empty part", "--b\r\n\r\n--b\r\n\r\nx\r\n--b--", []string{"", "\r\nx"}},
		{"boundary inside a line is content", "--b\r\n\r\nx--b\r\n---b\r\n--b--", []string{"\r\nx--b\r\n---b"}},
		{"no close delimiter", "--b\r\n\r\none\r\n", nil},
		{"no parts", "--b--\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, err := splitMultipart([]byte(tc.body), "b")
			if tc.want == nil {
				if err == nil {
					t.Errorf("parts %q, want error", parts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range parts {
				got = append(got, string(p))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeBase64(t *testing.T) {
	data := testPDF(200 << 10) // spans several decoder chunks
	enc := base64.StdEncoding.EncodeToString(data)
	wrap := func(n int, eol string) string {
		var b strings.Builder
		for s := enc; len(s) > 0; {
			k := min(n, len(s))
			b.WriteString(s[:k] + eol)
			s = s[k:]
		}
		return b.String()
	}
	for name, in := range map[string]string{
		"76 CRLF":    wrap(76, "\r\n"),
		"64 LF":      wrap(64, "\n"),
		"73 CRLF":    wrap(73, "\r\n"), // lines that split quanta
		"one line":   enc,
		"no newline": strings.TrimSuffix(wrap(76, "\r\n"), "\r\n"),
	} {
		var out bytes.Buffer
		if err := decodeBase64(&out, []byte(in)); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !bytes.Equal(out.Bytes(), data) {
			t.Errorf("%s: decoded %d bytes differ", name, out.Len())
		}
	}
	for name, in := range map[string]string{
		"bad character":   "QUJD\r\nR*VG\r\n",
		"missing padding": "QUJDRA",
		"space":           "QUJD REVG",
	} {
		if err := decodeBase64(&bytes.Buffer{}, []byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestDecodeBase64LikeStd checks that the fast path changes nothing:
// whatever the line breaks, padding or stray characters, decodeBase64
// accepts and decodes exactly what encoding/base64 does.
func TestDecodeBase64LikeStd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		enc := []byte(base64.StdEncoding.EncodeToString(testPDF(r.IntN(400))))
		var in []byte
		for len(enc) > 0 {
			k := min(len(enc), 4*r.IntN(25)+r.IntN(2)*r.IntN(4))
			in, enc = append(in, enc[:k]...), enc[k:]
			in = append(in, []string{"\r\n", "\r\n", "\n", "\r", "", "\r\n\r\n"}[r.IntN(6)]...)
		}
		if len(in) > 0 && r.IntN(4) == 0 {
			in[r.IntN(len(in))] = "=* -\r\n"[r.IntN(6)]
		}
		want, wantErr := base64.StdEncoding.DecodeString(string(in))
		var got bytes.Buffer
		err := decodeBase64(&got, in)
		if (err != nil) != (wantErr != nil) || err == nil && !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("case %d, %q: got %q, %v; encoding/base64 got %q, %v", i, in, got.Bytes(), err, want, wantErr)
		}
	}
}

// TestBase64LinesCopied checks that the lines decodeBase64Lines finds
// canonical and copies as it decodes, followed by what writeBase64After
// encodes, give writeBase64's text exactly, whatever the input looked like.
func TestBase64LinesCopied(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		data := testPDF(r.IntN(40 * 57))
		var enc bytes.Buffer
		writeBase64(&enc, data)
		in := enc.Bytes()
		switch r.IntN(5) {
		case 0: // as written
		case 1: // a line of another length from somewhere on
			if at := r.IntN(len(in) + 1); at < len(in) {
				in = slices.Concat(in[:at], []byte("\r\n"), in[at:])
			}
		case 2: // LF line ends
			in = bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		case 3: // a stray or padding character
			if len(in) > 0 {
				in = slices.Clone(in)
				in[r.IntN(len(in))] = "=*A"[r.IntN(3)]
			}
		case 4: // shorter lines
			in = bytes.Join(slices.Collect(slices.Chunk([]byte(base64.StdEncoding.EncodeToString(data)), 64)), []byte("\r\n"))
			if len(data) == 0 {
				in = nil
			}
		}
		s := &fileSink{h: newHasher(0)}
		var copied bytes.Buffer
		canon, err := decodeBase64Lines(s, &copied, in)
		s.h.state()
		if err != nil {
			continue
		}
		var again bytes.Buffer
		writeBase64(&again, s.data)
		if n := canon * (lineLen + 2); !bytes.HasPrefix(again.Bytes(), in[:n]) || copied.Len() != max(n-2, 0) || !bytes.HasPrefix(in, copied.Bytes()) {
			t.Fatalf("case %d: %d lines taken for canonical, %q copied: %q", i, canon, copied.Bytes(), in[:n])
		}
		for _, extra := range []int{0, 1, 57, 200} {
			file := append(slices.Clone(s.data), testPDF(extra)...)
			var want bytes.Buffer
			writeBase64(&want, file)
			got := bytes.NewBuffer(slices.Clone(copied.Bytes()))
			writeBase64After(got, canon, file)
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("case %d, %d more bytes: written %q, want %q", i, extra, got.Bytes(), want.Bytes())
			}
		}
	}
}

func TestWriteBase64(t *testing.T) {
	for _, n := range []int{0, 1, 57, 58, 300 * 57, 300*57 + 5} {
		data := testPDF(n)
		var b bytes.Buffer
		if err := writeBase64(&b, data); err != nil {
			t.Fatal(err)
		}
		ls := strings.Split(b.String(), "\r\n")
		for i, l := range ls {
			if len(l) > lineLen || (i < len(ls)-1 && len(l) != lineLen) {
				t.Errorf("%d bytes: line %d has %d characters", n, i, len(l))
			}
		}
		got, err := base64.StdEncoding.DecodeString(strings.Join(ls, ""))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: round trip failed: %v", n, err)
		}
	}
}

func TestCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\r\nc\n": "a\r\nb\r\nc\r\n",
		"\n\n":        "\r\n\r\n",
		"a\r\nb":      "a\r\nb",
		"":            "",
	} {
		if got := string(crlf([]byte(in))); got != want {
			t.Errorf("crlf(%q) = %q, want %q", in, got, want)
		}
	}
	canonical := []byte("a\r\nb\r\n")
	if &crlf(canonical)[0] != &canonical[0] {
		t.Error("canonical input was copied")
	}
	// Large messages are searched in two halves.
	const line, lines = 34, 1 << 16
	big := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef\r\n"), lines)
	for _, n := range []int{lines / 4, lines / 2, lines/2 + 1, lines} {
		at := n*line - 1 // the LF ending line n
		in := bytes.Clone(big)
		in[at-1] = 'x' // the CR before the LF at
		if got := crlf(in); len(got) != len(in)+1 || !bytes.Equal(got[at-1:at+2], []byte("x\r\n")) {
			t.Errorf("bare LF at %d of %d: not fixed", at, len(in))
		}
	}
	if &crlf(big)[0] != &big[0] {
		t.Error("large canonical input was copied")
	}
}

func TestShortLines(t *testing.T) {
	for in, want := range map[string]bool{
		"abc\r\nde":             true,
		"abcd\r\nde":            true,
		"abcde\r\nde":           false,
		"ab\r\nabcdef":          false,
		"abc\r\nabc\r\nabcdef":  false,
		"abc\r\na\r\nab\r\nabc": true,
		"":                      true,
	} {
		if got := shortLines([]byte(in), 4); got != want {
			t.Errorf("shortLines(%q, 4) = %v", in, got)
		}
	}
}

func TestIs7bit(t *testing.T) {
	for in, want := range map[string]bool{
		"Dear all,\r\nsee =C3=A0\r\n":     true,
		"":                                true,
		"K\xc3\xadnh g\xe1\xbb\xadi\r\n":  false,
		"nul\x00\r\n":                     false,
		"bare\nLF":                        false,
		"bare\rCR":                        false,
		"trailing space \r\nx":            false,
		"trailing tab\t":                  false,
		strings.Repeat("x", 999):          false,
		strings.Repeat("x", 998) + "\r\n": true,
	} {
		if got := is7bit([]byte(in)); got != want {
			t.Errorf("is7bit(%.20q) = %v", in, got)
		}
	}
}

func TestPartAttachments(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n" +
		"--b\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=logo.png\r\n\r\npng\r\n" +
		"--b\r\nContent-Type: application/pdf; name=\"=?utf-8?q?C=C3=B4ng_v=C4=83n.pdf?=\"\r\n\r\npdf\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n\r\nbin\r\n--b--\r\n"
	root, err := parsePart([]byte(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range attachments(root.kids) {
		names = append(names, p.filename()+":"+string(p.body))
	}
	if got := strings.Join(names, "|"); got != "logo.png:png|Công văn.pdf:pdf|:bin" {
		t.Errorf("attachments %s", got)
	}
	deep := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	for range maxDepth {
		deep += "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	}
	if _, err := parsePart([]byte(deep), 0); err == nil {
		t.Error("parsed nesting beyond maxDepth")
	}
}
