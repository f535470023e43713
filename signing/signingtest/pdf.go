package signingtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Doc builds a real PDF 1.7 file as a word processor's export would look to
// a signer: A4 pages of text in Helvetica, a classic cross-reference table,
// and, when filler > 0, an image XObject of that many pseudo-random bytes
// (seeded) on the first page's resources, to make the file large. Each
// element of pages is one page's lines, separated by "\n" (ASCII: the
// base-14 font has no Vietnamese glyphs).
func Doc(seed byte, filler int, pages ...string) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	n := len(pages)
	// 1 catalog, 2 pages, 3 font, 4 filler image, then per page: page, content.
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	kids := make([]string, n)
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", 5+2*i)
	}
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	data := make([]byte, max(filler, 1))
	rand.NewChaCha8([32]byte{seed}).Read(data)
	offsets = append(offsets, b.Len())
	fmt.Fprintf(&b, "4 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 /Length %d >>\nstream\n",
		len(data), len(data))
	b.Write(data)
	b.WriteString("\nendstream\nendobj\n")
	for i, text := range pages {
		var c bytes.Buffer
		c.WriteString("BT /F1 12 Tf 72 770 Td 16 TL\n")
		for _, line := range strings.Split(text, "\n") {
			// "@X Y text" draws text at X, Y; other lines follow each other.
			var x, y float64
			if k, _ := fmt.Sscanf(line, "@%g %g ", &x, &y); k == 2 {
				_, rest, _ := strings.Cut(line[1:], " ")
				_, rest, _ = strings.Cut(rest, " ")
				fmt.Fprintf(&c, "ET BT /F1 12 Tf %g %g Td (%s) Tj ET BT /F1 12 Tf 72 770 Td 16 TL\n", x, y, escape(rest))
				continue
			}
			fmt.Fprintf(&c, "(%s) '\n", escape(line))
		}
		fmt.Fprintf(&c, "ET\nBT /F1 9 Tf 290 30 Td (%d/%d) Tj ET\n", i+1, n)
		xobj := ""
		if i == 0 && filler > 0 {
			xobj = " /XObject << /Fill 4 0 R >>"
		}
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >>%s >> /Contents %d 0 R >>",
			xobj, 6+2*i))
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", c.Len(), c.Bytes()))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f\r\n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /ID [<%032x> <%032x>] >>\nstartxref\n%d\n%%%%EOF\n",
		len(offsets)+1, seed, seed, xref)
	return b.Bytes()
}

func escape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`)
	return r.Replace(s)
}

// Letter is an official letter (công văn) of pages pages with filler bytes
// of image data. The signer's block is on the last page: the title at the
// right, room for the signature at 330-480 x 110-170 (SignerRect), the name
// under it.
func Letter(seed byte, filler, pages int) []byte {
	head := "UBND THANH PHO HA NOI\nSO THONG TIN VA TRUYEN THONG\n\nSo: ..../STTTT-VP\n" +
		"V/v trien khai he thong thu dien tu cong vu\n\nKinh gui: So Tai chinh\n\n" +
		"So Thong tin va Truyen thong gui kem ke hoach trien khai he thong\nthu dien tu cong vu nam 2026."
	sign := "\n\nNoi nhan:\n- Nhu tren;\n- Luu: VT.\n@365 190 GIAM DOC\n@355 90 Nguyen Van An"
	texts := make([]string, max(pages, 1))
	texts[0] = head
	for i := 1; i < len(texts); i++ {
		texts[i] = fmt.Sprintf("Noi dung trang %d.\nKe hoach trien khai gom ba giai doan.", i+1)
	}
	texts[len(texts)-1] += sign
	return Doc(seed, filler, texts...)
}

// SignerRect is where Letter leaves room for the signer's signature.
var SignerRect = [4]float64{330, 110, 480, 170}
