package book

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"

	sealfont "sealmail/signing/font"
	"sealmail/signing/pdf"
)

// The PDF is written from scratch: pages of A4 landscape with the register
// as a ruled table, its text in DejaVu Serif embedded whole (a CIDFontType2
// font addressed by glyph, with a ToUnicode map so that the text can be
// searched, copied and extracted).

// Page geometry, in points.
const (
	pageW, pageH = 841.89, 595.28 // A4 landscape
	marginL      = 42.0           // 15 mm: the side the register is bound on
	marginR      = 28.0
	marginT      = 34.0
	marginB      = 40.0
	bodySize     = 8.5
	headSize     = 9.0
	titleSize    = 14.0
	lineGap      = 1.25 // line height as a multiple of the font size
	pad          = 3.0  // inside a cell
)

// face is the embedded font with what laying out text needs from it.
type face struct {
	f    *sfnt.Font
	upem float64
	mu   sync.Mutex
	buf  sfnt.Buffer
	gids map[rune]sfnt.GlyphIndex
	adv  map[sfnt.GlyphIndex]float64 // advance in 1/1000 em
	used map[sfnt.GlyphIndex]rune
}

var parsed = sync.OnceValues(func() (*sfnt.Font, error) { return sfnt.Parse(sealfont.SerifTTF) })

func newFace() (*face, error) {
	f, err := parsed()
	if err != nil {
		return nil, fmt.Errorf("book: font: %w", err)
	}
	return &face{f: f, upem: float64(f.UnitsPerEm()), gids: map[rune]sfnt.GlyphIndex{},
		adv: map[sfnt.GlyphIndex]float64{}, used: map[sfnt.GlyphIndex]rune{}}, nil
}

// glyph returns r's glyph and advance, a replacement for what the font
// lacks, and remembers it for the font's width and Unicode tables.
func (fc *face) glyph(r rune) (sfnt.GlyphIndex, float64) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	g, ok := fc.gids[r]
	if !ok {
		var err error
		g, err = fc.f.GlyphIndex(&fc.buf, r)
		if err != nil || g == 0 {
			g, _ = fc.f.GlyphIndex(&fc.buf, '?')
		}
		fc.gids[r] = g
	}
	w, ok := fc.adv[g]
	if !ok {
		a, err := fc.f.GlyphAdvance(&fc.buf, g, fixed.Int26_6(fc.f.UnitsPerEm())<<6, font.HintingNone)
		if err == nil {
			w = float64(a) / 64 * 1000 / fc.upem
		}
		fc.adv[g] = w
	}
	if _, ok := fc.used[g]; !ok {
		if g0, _ := fc.f.GlyphIndex(&fc.buf, r); g0 != g {
			r = '?' // the replacement shows as what it is
		}
		fc.used[g] = r
	}
	return g, w
}

// width is the width of s at size points.
func (fc *face) width(s string, size float64) float64 {
	w := 0.0
	for _, r := range s {
		_, a := fc.glyph(r)
		w += a
	}
	return w * size / 1000
}

// encode returns s as the hex string of its glyph ids (Identity-H).
func (fc *face) encode(s string) string {
	var b strings.Builder
	b.WriteByte('<')
	for _, r := range s {
		g, _ := fc.glyph(r)
		fmt.Fprintf(&b, "%04X", uint16(g))
	}
	b.WriteByte('>')
	return b.String()
}

// wrap breaks s into lines no wider than w at size, at spaces where it can
// and inside a word where a word alone is too wide.
func (fc *face) wrap(s string, size, w float64) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			try := word
			if line != "" {
				try = line + " " + word
			}
			if fc.width(try, size) <= w {
				line = try
				continue
			}
			if line != "" {
				lines = append(lines, line)
			}
			line = ""
			for fc.width(word, size) > w {
				// Cut the word where it still fits, at least one letter.
				rs := []rune(word)
				n := 1
				for n < len(rs) && fc.width(string(rs[:n+1]), size) <= w {
					n++
				}
				lines = append(lines, string(rs[:n]))
				word = string(rs[n:])
			}
			line = word
		}
		if line != "" || len(lines) == 0 {
			lines = append(lines, line)
		}
	}
	return lines
}

// page is a content stream being drawn.
type page struct {
	fc *face
	b  bytes.Buffer
}

func (p *page) text(x, y, size float64, s string) {
	if s == "" {
		return
	}
	fmt.Fprintf(&p.b, "BT /F1 %s Tf %s %s Td %s Tj ET\n", num(size), num(x), num(y), p.fc.encode(s))
}

// centred draws s centred on x.
func (p *page) centred(x, y, size float64, s string) {
	p.text(x-p.fc.width(s, size)/2, y, size, s)
}

func (p *page) rect(x, y, w, h float64) {
	fmt.Fprintf(&p.b, "%s %s %s %s re S\n", num(x), num(y), num(w), num(h))
}

func num(v float64) string { return fmt.Sprintf("%.2f", v) }

// WritePDF writes the register as a PDF on A4 landscape: the agency, the
// register's name and the year above a ruled table with Appendix IV's
// columns, numbered (1), (2), ... as on the printed form, the column heads
// repeated on every page and the pages numbered.
func (b *Book) WritePDF(w io.Writer, now time.Time) error {
	fc, err := newFace()
	if err != nil {
		return err
	}
	cols := b.Columns()
	total := 0.0
	for _, c := range cols {
		total += c.Width
	}
	usable := pageW - marginL - marginR
	widths := make([]float64, len(cols))
	for i, c := range cols {
		widths[i] = c.Width / total * usable
	}
	cellLines := func(cells []string, size float64) ([][]string, int) {
		out := make([][]string, len(cells))
		n := 1
		for i, c := range cells {
			out[i] = fc.wrap(c, size, widths[i]-2*pad)
			n = max(n, len(out[i]))
		}
		return out, n
	}
	var titles []string
	for _, c := range cols {
		titles = append(titles, c.Title)
	}
	headLines, headN := cellLines(titles, headSize)
	headH := float64(headN)*headSize*lineGap + 2*pad
	numberH := bodySize*lineGap + 2*pad
	lineH := bodySize * lineGap

	var pages []*page
	var cur *page
	var y float64 // top of the next row
	newPage := func() {
		cur = &page{fc: fc}
		pages = append(pages, cur)
		cur.b.WriteString("0.5 w 0 g 0 G\n")
		y = pageH - marginT
		if len(pages) == 1 {
			for i, l := range b.heading() {
				size := headSize + 3
				if i == 1 {
					// The register's name, in bold as on the form:
					// filled and stroked.
					size = titleSize
					cur.b.WriteString("2 Tr 0.3 w\n")
				}
				y -= size * lineGap
				cur.centred(pageW/2, y, size, l)
				if i == 1 {
					cur.b.WriteString("0 Tr 0.5 w\n")
				}
			}
			y -= 10
		}
		// The column heads, then their numbers.
		x := marginL
		for i := range cols {
			cur.rect(x, y-headH, widths[i], headH)
			for j, l := range headLines[i] {
				cur.centred(x+widths[i]/2, y-pad-float64(j+1)*headSize*lineGap+headSize*0.25, headSize, l)
			}
			cur.rect(x, y-headH-numberH, widths[i], numberH)
			cur.centred(x+widths[i]/2, y-headH-pad-bodySize, bodySize, fmt.Sprintf("(%d)", i+1))
			x += widths[i]
		}
		y -= headH + numberH
	}
	newPage()
	onPage := 0 // rows on the current page
	for _, row := range b.Rows() {
		lines, n := cellLines(row, bodySize)
		room := y - marginB - 2*pad
		if float64(n)*lineH > room && onPage > 0 {
			newPage()
			onPage = 0
			room = y - marginB - 2*pad
		}
		onPage++
		// A line longer than a whole page is cut, and says so.
		if fit := int(room / lineH); n > fit {
			n = max(fit, 1)
			for i := range lines {
				if len(lines[i]) > n {
					lines[i] = append(lines[i][:n-1:n-1], lines[i][n-1]+" …")
				}
			}
		}
		h := float64(n)*lineH + 2*pad
		x := marginL
		for i := range cols {
			cur.rect(x, y-h, widths[i], h)
			for j, l := range lines[i] {
				cur.text(x+pad, y-pad-float64(j+1)*lineH+bodySize*0.25, bodySize, l)
			}
			x += widths[i]
		}
		y -= h
	}
	for i, p := range pages {
		p.centred(pageW/2, marginB/2, bodySize, fmt.Sprintf("Trang %d/%d", i+1, len(pages)))
	}
	return writeFile(w, fc, pages, b.Title()+" "+fmt.Sprint(b.Year)+" — "+b.Agency, now)
}

// writeFile writes the document: catalog, page tree, pages, the font and
// the cross-reference table.
func writeFile(w io.Writer, fc *face, pages []*page, title string, now time.Time) error {
	const (
		catalog = 1 + iota
		tree
		font0
		cidFont
		descriptor
		fontFile
		toUnicode
		info
		firstPage
	)
	objs := map[int]pdf.Object{}
	var kids pdf.Array
	for i, p := range pages {
		pg, content := firstPage+2*i, firstPage+2*i+1
		kids = append(kids, pdf.Ref{Num: pg})
		objs[pg] = pdf.Dict{"Type": pdf.Name("Page"), "Parent": pdf.Ref{Num: tree}, "Contents": pdf.Ref{Num: content},
			"Resources": pdf.Dict{"Font": pdf.Dict{"F1": pdf.Ref{Num: font0}}}}
		objs[content] = &pdf.Stream{Dict: pdf.Dict{"Filter": pdf.Name("FlateDecode")}, Data: deflate(p.b.Bytes())}
	}
	objs[catalog] = pdf.Dict{"Type": pdf.Name("Catalog"), "Pages": pdf.Ref{Num: tree}}
	objs[tree] = pdf.Dict{"Type": pdf.Name("Pages"), "Kids": kids, "Count": int64(len(pages)),
		"MediaBox": pdf.Array{0.0, 0.0, pageW, pageH}}
	const name = pdf.Name("DejaVuSerif")
	objs[font0] = pdf.Dict{"Type": pdf.Name("Font"), "Subtype": pdf.Name("Type0"), "BaseFont": name,
		"Encoding": pdf.Name("Identity-H"), "DescendantFonts": pdf.Array{pdf.Ref{Num: cidFont}}, "ToUnicode": pdf.Ref{Num: toUnicode}}
	gids := make([]sfnt.GlyphIndex, 0, len(fc.used))
	for g := range fc.used {
		gids = append(gids, g)
	}
	slices.Sort(gids)
	var widths pdf.Array
	for _, g := range gids {
		widths = append(widths, int64(g), pdf.Array{int64(fc.adv[g] + 0.5)})
	}
	objs[cidFont] = pdf.Dict{"Type": pdf.Name("Font"), "Subtype": pdf.Name("CIDFontType2"), "BaseFont": name,
		"CIDSystemInfo":  pdf.Dict{"Registry": pdf.String("Adobe"), "Ordering": pdf.String("Identity"), "Supplement": int64(0)},
		"FontDescriptor": pdf.Ref{Num: descriptor}, "CIDToGIDMap": pdf.Name("Identity"), "DW": int64(1000), "W": widths}
	bounds, err := fc.f.Bounds(&fc.buf, fixed.Int26_6(fc.f.UnitsPerEm())<<6, font.HintingNone)
	if err != nil {
		return fmt.Errorf("book: font: %w", err)
	}
	m, err := fc.f.Metrics(&fc.buf, fixed.Int26_6(fc.f.UnitsPerEm())<<6, font.HintingNone)
	if err != nil {
		return fmt.Errorf("book: font: %w", err)
	}
	em := func(v fixed.Int26_6) int64 { return int64(float64(v) / 64 * 1000 / fc.upem) }
	objs[descriptor] = pdf.Dict{"Type": pdf.Name("FontDescriptor"), "FontName": name, "Flags": int64(2 | 32), // serif, nonsymbolic
		"FontBBox":    pdf.Array{em(bounds.Min.X), -em(bounds.Max.Y), em(bounds.Max.X), -em(bounds.Min.Y)},
		"ItalicAngle": int64(0), "Ascent": em(m.Ascent), "Descent": -em(m.Descent), "CapHeight": em(m.CapHeight),
		"StemV": int64(80), "FontFile2": pdf.Ref{Num: fontFile}}
	objs[fontFile] = &pdf.Stream{Dict: pdf.Dict{"Filter": pdf.Name("FlateDecode"), "Length1": int64(len(sealfont.SerifTTF))},
		Data: deflate(sealfont.SerifTTF)}
	objs[toUnicode] = &pdf.Stream{Dict: pdf.Dict{"Filter": pdf.Name("FlateDecode")}, Data: deflate(cmap(fc, gids))}
	objs[info] = pdf.Dict{"Title": pdf.TextString(title), "Producer": pdf.String("sealmail"),
		"CreationDate": pdf.String(now.Format("D:20060102150405-07'00'"))}

	out := []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	n := firstPage + 2*len(pages)
	offsets := make([]int, n)
	for i := 1; i < n; i++ {
		offsets[i] = len(out)
		out = fmt.Appendf(out, "%d 0 obj\n", i)
		out = pdf.Append(out, objs[i])
		out = append(out, "\nendobj\n"...)
	}
	xref := len(out)
	out = fmt.Appendf(out, "xref\n0 %d\n0000000000 65535 f\r\n", n)
	for i := 1; i < n; i++ {
		out = fmt.Appendf(out, "%010d 00000 n\r\n", offsets[i])
	}
	out = append(out, "trailer\n"...)
	out = pdf.Append(out, pdf.Dict{"Size": int64(n), "Root": pdf.Ref{Num: catalog}, "Info": pdf.Ref{Num: info}})
	out = fmt.Appendf(out, "\nstartxref\n%d\n%%%%EOF\n", xref)
	_, err = w.Write(out)
	return err
}

// cmap is the ToUnicode map from glyph ids back to the text they show.
func cmap(fc *face, gids []sfnt.GlyphIndex) []byte {
	var b bytes.Buffer
	b.WriteString("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n" +
		"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n" +
		"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n" +
		"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n")
	for len(gids) > 0 {
		n := min(len(gids), 100)
		fmt.Fprintf(&b, "%d beginbfchar\n", n)
		for _, g := range gids[:n] {
			fmt.Fprintf(&b, "<%04X> <", uint16(g))
			for _, u := range utf16.Encode([]rune{fc.used[g]}) {
				fmt.Fprintf(&b, "%04X", u)
			}
			b.WriteString(">\n")
		}
		b.WriteString("endbfchar\n")
		gids = gids[n:]
	}
	b.WriteString("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")
	return b.Bytes()
}

func deflate(data []byte) []byte {
	var out bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&out, zlib.BestCompression) // a valid level: cannot fail
	zw.Write(data)
	zw.Close()
	return out.Bytes()
}
