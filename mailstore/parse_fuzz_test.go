package mailstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse parses arbitrary messages as delivery does (envelope, body
// structure, indexed text) and checks that nothing panics, the envelope
// survives its storage codec, the structure its JSON, part sizes stay
// within the message and the indexed text holds no NUL. Inputs the fuzzer
// found are in testdata/fuzz/FuzzParse and run in every go test; search for
// more with 'go test -run XXX -fuzz FuzzParse -fuzztime 5m -parallel 1 ./mailstore'.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"From: \"Nguyễn Văn A\" <a@so.gov.vn>, Nhóm: b@x.test, c@x.test;\r\nTo: =?utf-8?q?V=C4=83n_th=C6=B0?= <vt@x.test>\r\n" +
			"Subject: =?utf-8?b?VsSDbiBi4bqjbg==?=\r\nDate: Sat, 28 Nov 2026 10:00:00 +0700\r\nMessage-ID: <1@x>\r\n" +
			"References: <0@x> <p@x>\r\nIn-Reply-To: <p@x>\r\n\r\nbody\r\n",
		"Subject: a\r\nno colon\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/html; charset=windows-1258\r\n" +
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>=C4=90</p>\r\n--X\r\nContent-Type: message/rfc822\r\n\r\nFrom: q@r\r\n\r\nx\r\n" +
			"--X\r\nContent-Type: application/pdf; name*=utf-8''t%E1%BB%9D.pdf\r\nContent-Disposition: attachment; filename*=utf-8''t%E1%BB%9D.pdf\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--X--\r\n",
		"Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nabc\x00def",
		"To: undisclosed-recipients:;\r\nCc: (comment) <@route:a@b>, \"unterminated\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var tx text
		env, st := parse(raw, &tx)

		got, err := decodeEnvelope(encodeEnvelope(&env))
		if err != nil {
			t.Fatalf("envelope codec: %v", err)
		}
		if !got.Date.Equal(env.Date) {
			t.Fatalf("date %v, want %v", got.Date, env.Date)
		}
		got.Date = env.Date
		if !reflect.DeepEqual(nilEmpty(*got), nilEmpty(env)) {
			t.Fatalf("envelope round trip:\n got %+v\nwant %+v", *got, env)
		}

		b, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("structure JSON: %v", err)
		}
		var back Part
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("structure JSON back: %v", err)
		}
		var walk func(p *Part)
		walk = func(p *Part) {
			if p.Size < 0 || p.Size > int64(len(raw)) || p.Lines < 0 || p.Type == "" {
				t.Fatalf("part %+v of a %d-byte message", p, len(raw))
			}
			for i := range p.Children {
				walk(&p.Children[i])
			}
		}
		walk(&st)

		for _, c := range tx.columns(FieldText) {
			if strings.IndexByte(c, 0) >= 0 {
				t.Fatalf("NUL in indexed text %q", c)
			}
		}

		// Read where it lies (a spool file, the blob store), the message
		// gives what it gives in memory.
		var rt text
		renv, rst, err := parseContent(Content{R: bytes.NewReader(raw), Size: int64(len(raw))}, &rt)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(renv, env) || !reflect.DeepEqual(rst, st) {
			t.Fatalf("read from a reader:\n got %+v\n%+v\nwant %+v\n%+v", renv, rst, env, st)
		}
		if !reflect.DeepEqual(rt.columns(FieldText), tx.columns(FieldText)) {
			t.Fatalf("text read from a reader:\n got %q\nwant %q", rt.columns(FieldText), tx.columns(FieldText))
		}
	})
}

// nilEmpty makes an envelope's empty lists nil, as the codec gives them.
func nilEmpty(e Envelope) Envelope {
	for _, l := range []*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	for _, l := range []*[]string{&e.InReplyTo, &e.References} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return e
}

// BenchmarkParseContent is BenchmarkParse's message read from a reader, as
// delivery reads a spooled message and the indexer a stored one.
func BenchmarkParseContent(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var tx text
		if _, _, err := parseContent(Content{R: bytes.NewReader(raw), Size: int64(len(raw))}, &tx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse parses a typical official mail at delivery: a text part,
// an HTML part and a 1 MiB base64 PDF. Compare with the go-message
// parser it replaced in docs/benchmarks.md.
func BenchmarkParse(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var tx text
		parse(raw, &tx)
	}
}

func benchMessage() []byte {
	pdf := strings.Repeat(strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 2)+"\r\n", 1<<20/72)
	raw := []byte("From: \"Nguyễn Văn A\" <a@so.gov.vn>\r\nTo: vanthu@x.test\r\nSubject: =?utf-8?q?C=C3=B4ng_v=C4=83n?=\r\n" +
		"Date: Sat, 28 Nov 2026 10:00:00 +0700\r\nMessage-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n" +
		"--X\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n--Y\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.Repeat("Kính gửi các phòng ban, đề nghị thực hiện. ", 100) + "\r\n--Y\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>" +
		strings.Repeat("Kính gửi các phòng ban, đề nghị thực hiện. ", 100) + "</p>\r\n--Y--\r\n" +
		"--X\r\nContent-Type: application/pdf; name=cv.pdf\r\nContent-Disposition: attachment; filename=cv.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + pdf + "--X--\r\n")
	return raw
}
