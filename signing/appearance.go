package signing

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"sync"
	"time"

	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	sealfont "sealmail/signing/font"
	"sealmail/signing/pdf"
)

// The visible signatures are pictures: text is drawn into them with an
// embedded font that has every Vietnamese glyph (DejaVu Serif, Bitstream
// Vera licence, font/LICENSE), so any PDF reader shows it as it was meant.
var serif = sync.OnceValues(func() (*opentype.Font, error) { return opentype.Parse(sealfont.SerifTTF) })

// Appearance geometry, in PDF points (1/72 in).
const (
	pxPerPt   = 4     // raster resolution of appearances: 288 dpi
	sealSize  = 100.0 // a round seal of about 35 mm, as stamped on paper
	sealText  = 7.0   // agency name and time under the seal
	annexText = 10.0  // Appendix I: attachments carry 10 pt text
	margin    = 28.0  // about 1 cm from the page edge
)

// ISOTime formats a signing time as Appendix I shows it: ISO 8601 in
// Vietnam's time zone, e.g. 2026-11-28T09:30:00+07:00.
func ISOTime(t time.Time) string {
	return t.In(vietnam).Format("2006-01-02T15:04:05-07:00")
}

var vietnam = time.FixedZone("ICT", 7*60*60)

// ParseSealImage reads an agency's seal picture: a PNG whose background is
// transparent and whose mark is red, as Appendix I asks.
func ParseSealImage(data []byte) (image.Image, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("signing: seal image: %w", err)
	}
	b := img.Bounds()
	if b.Dx() < 64 || b.Dy() < 64 || b.Dx() > 4096 || b.Dy() > 4096 {
		return nil, fmt.Errorf("signing: seal image is %dx%d pixels; use 64 to 4096", b.Dx(), b.Dy())
	}
	var transparent, ink int
	var r, g, bl uint64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			switch {
			case c.A < 32:
				transparent++
			case c.A > 128:
				ink++
				r, g, bl = r+uint64(c.R), g+uint64(c.G), bl+uint64(c.B)
			}
		}
	}
	switch {
	case transparent < b.Dx()*b.Dy()/10:
		return nil, errors.New("signing: seal image has no transparent background")
	case ink == 0:
		return nil, errors.New("signing: seal image is empty")
	case r < 2*g || r < 2*bl || r/uint64(ink) < 120:
		return nil, errors.New("signing: seal image is not red")
	}
	return img, nil
}

// textImage draws lines in the embedded serif at size points, each line
// aligned right (or centred), on a transparent background.
func textImage(lines []string, size float64, col color.Color, right bool) (*image.NRGBA, error) {
	f, err := serif()
	if err != nil {
		return nil, fmt.Errorf("font: %w", err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size * pxPerPt, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("font: %w", err)
	}
	defer face.Close()
	m := face.Metrics()
	lineH := m.Height.Ceil()
	width := 0
	for _, l := range lines {
		width = max(width, font.MeasureString(face, l).Ceil())
	}
	img := image.NewNRGBA(image.Rect(0, 0, width+2, lineH*len(lines)+2))
	d := &font.Drawer{Dst: img, Src: image.NewUniform(col), Face: face}
	for i, l := range lines {
		w := font.MeasureString(face, l).Ceil()
		x := (width - w) / 2
		if right {
			x = width - w
		}
		d.Dot = fixed.P(x+1, i*lineH+m.Ascent.Ceil()+1)
		d.DrawString(l)
	}
	return img, nil
}

// sealImage is the main document's agency signature: the seal at its real
// size, the agency's name and the signing time to its left, where they
// stay clear of the signer's name under the signature. The seal is at the
// right edge, centred vertically.
func sealImage(seal image.Image, organ string, t time.Time) (*image.NRGBA, error) {
	text, err := textImage([]string{organ, ISOTime(t)}, sealText, color.Black, true)
	if err != nil {
		return nil, err
	}
	sealPx, gap := 0, 0
	if seal != nil {
		sealPx, gap = int(sealSize*pxPerPt), 4*pxPerPt
	}
	tb := text.Bounds()
	w, h := tb.Dx()+gap+sealPx, max(sealPx, tb.Dy())
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	if seal != nil {
		b := seal.Bounds()
		// The seal keeps its proportions within a square of sealSize.
		sw, sh := sealPx, sealPx*b.Dy()/b.Dx()
		if sh > sealPx {
			sw, sh = sealPx*b.Dx()/b.Dy(), sealPx
		}
		x, y := w-sealPx+(sealPx-sw)/2, (h-sh)/2
		draw.CatmullRom.Scale(img, image.Rect(x, y, x+sw, y+sh), seal, b, draw.Over, nil)
	}
	draw.Draw(img, tb.Add(image.Pt(0, (h-tb.Dy())/2)), text, image.Point{}, draw.Over)
	return img, nil
}

// mainAppearance places the agency's signature on the main document as
// Appendix I shows it: the seal over the left third of the signer's
// visible signature. Without one, it goes to the lower right of the
// last page.
func mainAppearance(f *pdf.File, seal image.Image, organ string, t time.Time) (*Appearance, error) {
	img, err := sealImage(seal, organ, t)
	if err != nil {
		return nil, err
	}
	w, h := float64(img.Bounds().Dx())/pxPerPt, float64(img.Bounds().Dy())/pxPerPt
	page, anchor, ok := signerWidget(f)
	box := mediaBox(f, page)
	var right, cy float64 // the seal's right edge and the picture's vertical centre
	if ok {
		right = anchor[0] + (anchor[2]-anchor[0])/3
		cy = (anchor[1] + anchor[3]) / 2
	} else {
		right = box[2] - margin
		cy = box[1] + margin + h/2
	}
	left, top := right-w, cy+h/2
	// Keep it on the page.
	left = min(max(left, box[0]), box[2]-w)
	top = max(min(top, box[3]), box[1]+h)
	return &Appearance{Page: page, Rect: [4]float64{left, top - h, left + w, top}, Image: img}, nil
}

// annexAppearance is the agency signature on an attachment (phụ lục): no
// seal, the main document's number and the signing time at the top right
// of the first page, 10 pt.
func annexAppearance(f *pdf.File, notation string, t time.Time) (*Appearance, error) {
	img, err := textImage([]string{notation, ISOTime(t)}, annexText, color.Black, true)
	if err != nil {
		return nil, err
	}
	w, h := float64(img.Bounds().Dx())/pxPerPt, float64(img.Bounds().Dy())/pxPerPt
	box := mediaBox(f, 0)
	right, top := box[2]-margin, box[3]-margin/2
	return &Appearance{Page: 0, Rect: [4]float64{right - w, top - h, right, top}, Image: img}, nil
}

// signerWidget finds the last visible signature before ours: its page and
// rectangle.
func signerWidget(f *pdf.File) (int, [4]float64, bool) {
	pages, err := f.Pages()
	_, cat, err2 := f.Catalog()
	if err != nil || err2 != nil {
		return 0, [4]float64{}, false
	}
	page, found := len(pages)-1, false
	var rect [4]float64
	for _, fd := range fields(f, cat) {
		if fd["V"] == nil || fd.Name("FT") != "Sig" {
			continue
		}
		r := f.Array(fd["Rect"])
		if len(r) != 4 {
			continue
		}
		var v [4]float64
		ok := true
		for i := range r {
			v[i], ok = f.Num(r[i])
			if !ok {
				break
			}
		}
		if !ok || v[2]-v[0] < 1 || v[3]-v[1] < 1 {
			continue
		}
		if v[0] > v[2] {
			v[0], v[2] = v[2], v[0]
		}
		if v[1] > v[3] {
			v[1], v[3] = v[3], v[1]
		}
		rect, found = v, true
		if p, ok := fd["P"].(pdf.Ref); ok {
			for i, pr := range pages {
				if pr == p {
					page = i
				}
			}
		}
	}
	return page, rect, found
}

// mediaBox returns a page's visible area (CropBox, else MediaBox), A4 when
// it has none.
func mediaBox(f *pdf.File, page int) [4]float64 {
	box := [4]float64{0, 0, 595, 842}
	pages, err := f.Pages()
	if err != nil || page >= len(pages) {
		return box
	}
	d := f.Dict(pages[page])
	for _, key := range []pdf.Name{"CropBox", "MediaBox"} {
		a := f.Array(f.Inherited(d, key))
		if len(a) != 4 {
			continue
		}
		var v [4]float64
		ok := true
		for i := range a {
			if v[i], ok = f.Num(a[i]); !ok {
				break
			}
		}
		if ok {
			return v
		}
	}
	return box
}
