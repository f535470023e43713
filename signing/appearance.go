package signing

import (
	"bytes"
	"crypto/sha256"
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
	decoded, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("signing: seal image: %w", err)
	}
	b := decoded.Bounds()
	if b.Dx() < 64 || b.Dy() < 64 || b.Dx() > 4096 || b.Dy() > 4096 {
		return nil, fmt.Errorf("signing: seal image is %dx%d pixels; use 64 to 4096", b.Dx(), b.Dy())
	}
	img := toNRGBA(decoded) // what the signatures read
	var transparent, ink int
	var r, g, bl uint64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.NRGBAAt(x, y)
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

// mainAppearance places the agency's signature on the main document as
// Appendix I shows it: the seal over the left third of the signer's
// visible signature. Without one, it goes to the lower right of the
// last page. The picture has the seal at its real size, at the right,
// centred vertically, and the agency's name and the signing time to its
// left, where they stay clear of the signer's name under the signature.
func mainAppearance(f *pdf.File, seal image.Image, organ string, t time.Time) (*Appearance, error) {
	text, err := textImage([]string{organ, ISOTime(t)}, sealText, color.Black, true)
	if err != nil {
		return nil, err
	}
	textPic, err := newPicture(text)
	if err != nil {
		return nil, err
	}
	sealPx, gap := 0, 0
	var sealPic *picture
	if seal != nil {
		sealPx, gap = int(sealSize*pxPerPt), 4*pxPerPt
		if sealPic, err = sealPicture(seal, sealPx); err != nil {
			return nil, err
		}
	}
	wpx, hpx := textPic.w+gap+sealPx, max(sealPx, textPic.h)
	var pics []placed
	if sealPic != nil {
		x, y := wpx-sealPx+(sealPx-sealPic.w)/2, (hpx-sealPic.h)/2
		pics = append(pics, placed{sealPic, pixelBox(x, y, sealPic, hpx)})
	}
	pics = append(pics, placed{textPic, pixelBox(0, (hpx-textPic.h)/2, textPic, hpx)})

	w, h := float64(wpx)/pxPerPt, float64(hpx)/pxPerPt
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
	return &Appearance{Page: page, Rect: [4]float64{left, top - h, left + w, top}, pictures: pics}, nil
}

// pixelBox is where p goes, its top left corner at x, y pixels from the
// top left of an appearance hpx pixels high: left, bottom, right, top in
// points from the bottom left.
func pixelBox(x, y int, p *picture, hpx int) [4]float64 {
	return [4]float64{float64(x) / pxPerPt, float64(hpx-y-p.h) / pxPerPt, float64(x+p.w) / pxPerPt, float64(hpx-y) / pxPerPt}
}

// sealPictures are the seal pictures prepared for signatures, by their
// pixels: scaling and compressing a seal costs more than the rest of a
// signature, and an agency signs every document with the same one.
var sealPictures = struct {
	sync.Mutex
	m map[[sha256.Size]byte]*picture
}{m: map[[sha256.Size]byte]*picture{}}

// maxSealPictures bounds the cache: a server hosts a few agencies, each
// with one seal, replaced seldom.
const maxSealPictures = 16

// sealPicture returns seal scaled to fit a square of size pixels, keeping
// its proportions.
func sealPicture(seal image.Image, size int) (*picture, error) {
	n := toNRGBA(seal)
	b := n.Bounds()
	d := sha256.New()
	fmt.Fprintf(d, "%d %d %d\n", b.Dx(), b.Dy(), size)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		d.Write(n.Pix[n.PixOffset(b.Min.X, y):n.PixOffset(b.Max.X, y)])
	}
	key := [sha256.Size]byte(d.Sum(nil))
	sealPictures.Lock()
	p := sealPictures.m[key]
	sealPictures.Unlock()
	if p != nil {
		return p, nil
	}
	sw, sh := size, size*b.Dy()/b.Dx()
	if sh > size {
		sw, sh = size*b.Dx()/b.Dy(), size
	}
	img := image.NewNRGBA(image.Rect(0, 0, sw, sh))
	draw.CatmullRom.Scale(img, img.Bounds(), n, b, draw.Over, nil)
	p, err := newPicture(img)
	if err != nil {
		return nil, err
	}
	sealPictures.Lock()
	if len(sealPictures.m) >= maxSealPictures {
		clear(sealPictures.m)
	}
	sealPictures.m[key] = p
	sealPictures.Unlock()
	return p, nil
}

// toNRGBA returns img as an *image.NRGBA, converting it if need be.
func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	b := img.Bounds()
	n := image.NewNRGBA(b)
	draw.Draw(n, b, img, b.Min, draw.Src)
	return n
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
