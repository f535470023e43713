package signing

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"image"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"

	"sealmail/signing/pdf"
)

// PDF signature profiles (the signature dictionary's /SubFilter).
const (
	// ProfilePKCS7 is what the national CA's tools (vSignPDF, the VGCA
	// plugins) write and Adobe Reader checks: CMS with signingTime.
	ProfilePKCS7 = "adbe.pkcs7.detached"
	// ProfilePAdES is PAdES baseline (ETSI EN 319 142-1): B-B, or B-T when
	// the seal has a Timestamper.
	ProfilePAdES = "ETSI.CAdES.detached"
)

// PDFSignOptions describes one signature to add to a PDF.
type PDFSignOptions struct {
	Profile  string // ProfilePKCS7 when empty
	Field    string // signature field name; made unique in the file
	Name     string // /Name: the signer as people read it
	Reason   string
	Location string
	// Appearance is the visible signature; nil signs invisibly.
	Appearance *Appearance
}

// Appearance is a visible signature: Image drawn into Rect (PDF user
// space points: left, bottom, right, top) on page Page (0 is the first,
// negative counts from the end).
type Appearance struct {
	Page  int
	Rect  [4]float64
	Image image.Image
	// pictures, when set, are drawn instead of Image: the agency's seal,
	// prepared once per seal picture, beside the text of one signature.
	pictures []placed
}

// contentsSize is the room reserved for the CMS signature, in bytes,
// beyond the certificates: the signature value, attributes and, with a
// Timestamper, an RFC 3161 token with its TSA's certificates.
const (
	contentsBase  = 4 << 10
	contentsToken = 12 << 10
)

// SignPDF returns data with s's signature appended as an incremental update
// (ISO 32000-1 §12.8): a new signature field and widget on the page, the
// updated AcroForm, page and cross-reference section, and a CMS signature
// over every byte of the new file but its own /Contents. Earlier revisions
// and signatures are left byte for byte as they were.
func SignPDF(ctx context.Context, data []byte, s *Seal, opts PDFSignOptions, now time.Time) ([]byte, error) {
	out, _, err := signPDF(ctx, pdfInput{data: data}, s, opts, now)
	if err != nil {
		return nil, fmt.Errorf("signing: sign PDF: %w", err)
	}
	return out, nil
}

// pdfInput is a file for signPDF. stampPDFs, which decoded it, hands over
// the SHA-256 state its bytes took it to, and the spare capacity after
// them, where the update is appended without copying the file.
type pdfInput struct {
	data   []byte
	hashed hash.Hash // nil: hash from the first byte
	owned  bool      // the capacity after data is signPDF's
}

// signPDF is SignPDF, also returning the SHA-256 of the signed file: the
// manifest lists it, and the signature's digest has hashed all but the
// last few kilobytes of it already.
func signPDF(ctx context.Context, in pdfInput, s *Seal, opts PDFSignOptions, now time.Time) ([]byte, []byte, error) {
	data := in.data
	profile := opts.Profile
	switch profile {
	case "":
		profile = ProfilePKCS7
	case ProfilePKCS7, ProfilePAdES:
	default:
		return nil, nil, fmt.Errorf("unknown PDF signature profile %q", profile)
	}
	f, err := pdf.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	u, err := pdf.NewUpdate(f)
	if err != nil {
		return nil, nil, err
	}
	catRef, cat, err := f.Catalog()
	if err != nil {
		return nil, nil, err
	}
	pages, err := f.Pages()
	if err != nil {
		return nil, nil, err
	}
	pageIdx := 0
	if opts.Appearance != nil {
		pageIdx = opts.Appearance.Page
		if pageIdx < 0 {
			pageIdx += len(pages)
		}
		if pageIdx < 0 || pageIdx >= len(pages) {
			return nil, nil, fmt.Errorf("page %d of %d", opts.Appearance.Page, len(pages))
		}
	}
	pageRef := pages[pageIdx]
	page := f.Dict(pageRef)

	// The signature dictionary is laid out by hand, so that its byte range
	// and contents can be filled in once the file's final length is known.
	room := contentsBase
	for _, c := range append(s.Chain, s.Cert) {
		room += len(c.Raw)
	}
	if s.Timestamper != nil {
		room += contentsToken
	}
	sigDict := []byte("<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/" + profile + "/M")
	sigDict = pdf.Append(sigDict, pdf.String(pdfDate(now)))
	for _, kv := range []struct{ k, v string }{{"Name", opts.Name}, {"Reason", opts.Reason}, {"Location", opts.Location}} {
		if kv.v != "" {
			sigDict = append(sigDict, '/')
			sigDict = append(sigDict, kv.k...)
			sigDict = pdf.Append(sigDict, pdf.TextString(kv.v))
		}
	}
	sigDict = append(sigDict, "/ByteRange"...)
	byteRangeAt := len(sigDict)
	sigDict = append(sigDict, byteRangeHole...)
	sigDict = append(sigDict, "/Contents<"...)
	contentsAt := len(sigDict) - 1
	sigDict = append(sigDict, bytes.Repeat([]byte("0"), 2*room)...)
	sigDict = append(sigDict, ">>>"...)
	sigRef := u.Add(pdf.Raw(sigDict))

	widget := pdf.Dict{
		"Type": pdf.Name("Annot"), "Subtype": pdf.Name("Widget"), "FT": pdf.Name("Sig"),
		"T": pdf.TextString(uniqueField(f, cat, opts.Field)), "V": sigRef, "P": pageRef,
		"F":    int64(4 | 128), // Print, Locked
		"Rect": pdf.Array{int64(0), int64(0), int64(0), int64(0)},
	}
	if a := opts.Appearance; a != nil {
		ap, err := appearance(u, a)
		if err != nil {
			return nil, nil, err
		}
		widget["Rect"] = pdf.Array{a.Rect[0], a.Rect[1], a.Rect[2], a.Rect[3]}
		widget["AP"] = pdf.Dict{"N": ap}
	}
	widgetRef := u.Add(widget)

	// The widget joins the page's annotations; an indirect /Annots array
	// is replaced rather than the page.
	if r, ok := page["Annots"].(pdf.Ref); ok {
		u.Set(r, append(append(pdf.Array{}, f.Array(r)...), widgetRef))
	} else {
		p := page.Copy()
		p["Annots"] = append(append(pdf.Array{}, f.Array(page["Annots"])...), widgetRef)
		u.Set(pageRef, p)
	}
	// The field joins the AcroForm's fields, SigFlags 3: signatures exist,
	// and the file is to be appended to only.
	setForm := func(form pdf.Dict) pdf.Dict {
		form = form.Copy()
		if r, ok := form["Fields"].(pdf.Ref); ok {
			u.Set(r, append(append(pdf.Array{}, f.Array(r)...), widgetRef))
		} else {
			form["Fields"] = append(append(pdf.Array{}, f.Array(form["Fields"])...), widgetRef)
		}
		form["SigFlags"] = int64(3)
		return form
	}
	if r, ok := cat["AcroForm"].(pdf.Ref); ok && f.Dict(r) != nil {
		u.Set(r, setForm(f.Dict(r)))
	} else {
		c := cat.Copy()
		c["AcroForm"] = setForm(f.Dict(cat["AcroForm"]))
		u.Set(catRef, c)
	}

	write := u.Write
	if in.owned {
		write = u.WriteInPlace
	}
	w, err := write()
	if err != nil {
		return nil, nil, err
	}
	out := w.Data
	// Offsets of the object's body: after "n 0 obj\n".
	body := w.Offsets[sigRef.Num] + bytes.IndexByte(out[w.Offsets[sigRef.Num]:], '\n') + 1
	lt := body + contentsAt
	gt := lt + 1 + 2*room
	if out[lt] != '<' || out[gt] != '>' {
		return nil, nil, errors.New("signature placeholder misplaced")
	}
	br := fmt.Appendf(nil, "[0 %d %d %d]", lt, gt+1, len(out)-gt-1)
	if len(br) > len(byteRangeHole) {
		return nil, nil, errors.New("file too large for the byte range")
	}
	copy(out[body+byteRangeAt:], append(br, bytes.Repeat([]byte(" "), len(byteRangeHole)-len(br))...))

	h, from := in.hashed, len(data) // out starts with data
	if h == nil {
		h, from = sha256.New(), 0
	}
	h.Write(out[from:lt])
	whole := h.(hash.Cloner)
	if whole, err = whole.Clone(); err != nil {
		return nil, nil, err
	}
	h.Write(out[gt+1:])
	der, err := signCMS(ctx, s, h.Sum(nil), now, profile == ProfilePKCS7)
	if err != nil {
		return nil, nil, err
	}
	if 2*len(der) > 2*room {
		return nil, nil, fmt.Errorf("signature of %d bytes exceeds the %d reserved", len(der), room)
	}
	hex.Encode(out[lt+1:], der)
	whole.Write(out[lt:])
	return out, whole.Sum(nil), nil
}

// byteRangeHole is the byte range before it is known: room for offsets of
// ten digits each.
var byteRangeHole = []byte("[0 0000000000 0000000000 0000000000]")

// uniqueField returns name, or name with a number, so that no two
// signature fields share a name: readers would take them for one field.
func uniqueField(f *pdf.File, cat pdf.Dict, name string) string {
	if name == "" {
		name = "Signature"
	}
	taken := map[string]bool{}
	for _, fd := range fields(f, cat) {
		if t, ok := fd["T"].(pdf.String); ok {
			taken[decodeText(t)] = true
		}
	}
	out := name
	for i := 2; taken[out]; i++ {
		out = name + " " + strconv.Itoa(i)
	}
	return out
}

// fields returns the terminal fields of the AcroForm.
func fields(f *pdf.File, cat pdf.Dict) []pdf.Dict {
	form := f.Dict(cat["AcroForm"])
	if form == nil {
		return nil
	}
	var out []pdf.Dict
	seen := map[pdf.Ref]bool{}
	var walk func(kids pdf.Array, depth int)
	walk = func(kids pdf.Array, depth int) {
		for _, k := range kids {
			if r, ok := k.(pdf.Ref); ok {
				if seen[r] {
					continue
				}
				seen[r] = true
			}
			d := f.Dict(k)
			if d == nil {
				continue
			}
			if kk := f.Array(d["Kids"]); kk != nil && depth < 32 && d["T"] != nil {
				walk(kk, depth+1)
				continue
			}
			out = append(out, d)
		}
	}
	walk(f.Array(form["Fields"]), 0)
	return out
}

// appearance adds the form XObject that draws a.Image over the widget, or
// a's pictures at their places.
func appearance(u *pdf.Update, a *Appearance) (pdf.Ref, error) {
	w, h := a.Rect[2]-a.Rect[0], a.Rect[3]-a.Rect[1]
	if w <= 0 || h <= 0 {
		return pdf.Ref{}, errors.New("appearance rectangle is empty")
	}
	pics := a.pictures
	if pics == nil {
		p, err := newPicture(a.Image)
		if err != nil {
			return pdf.Ref{}, err
		}
		pics = []placed{{p, [4]float64{0, 0, w, h}}}
	}
	var content []byte
	xobjs := pdf.Dict{}
	for i, p := range pics {
		name := pdf.Name("Im" + strconv.Itoa(i))
		xobjs[name] = p.add(u)
		r := p.at
		content = fmt.Appendf(content, "q %s 0 0 %s %s %s cm /%s Do Q\n", num(r[2]-r[0]), num(r[3]-r[1]), num(r[0]), num(r[1]), name)
	}
	return u.Add(&pdf.Stream{Dict: pdf.Dict{
		"Type": pdf.Name("XObject"), "Subtype": pdf.Name("Form"),
		"BBox":      pdf.Array{int64(0), int64(0), w, h},
		"Resources": pdf.Dict{"XObject": xobjs},
	}, Data: content}), nil
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// A picture is an image as an image XObject holds it: RGB samples and
// the alpha channel as a soft mask, so that a seal's transparent
// background lets the page show through; both compressed.
type picture struct {
	w, h       int
	rgb, alpha []byte // alpha nil when opaque
}

// placed is a picture at a place in an appearance (left, bottom, right,
// top, in points).
type placed struct {
	*picture
	at [4]float64
}

func newPicture(img image.Image) (*picture, error) {
	b := img.Bounds()
	if b.Empty() {
		return nil, errors.New("empty image")
	}
	rgb := make([]byte, 0, b.Dx()*b.Dy()*3)
	alpha := make([]byte, 0, b.Dx()*b.Dy())
	opaque := true
	if n, ok := img.(*image.NRGBA); ok {
		// The appearances drawn here: their pixels are read as they are,
		// already not premultiplied, without a colour value per pixel.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := n.Pix[n.PixOffset(b.Min.X, y):n.PixOffset(b.Max.X, y)]
			for i := 0; i < len(row); i += 4 {
				rgb = append(rgb, row[i], row[i+1], row[i+2])
				alpha = append(alpha, row[i+3])
				opaque = opaque && row[i+3] == 0xff
			}
		}
	} else {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, a := img.At(x, y).RGBA()
				// Un-premultiply, so that the colour stays red where the mask fades.
				if a > 0 {
					r, g, bl = r*0xffff/a, g*0xffff/a, bl*0xffff/a
				}
				rgb = append(rgb, byte(r>>8), byte(g>>8), byte(bl>>8))
				alpha = append(alpha, byte(a>>8))
				opaque = opaque && a == 0xffff
			}
		}
	}
	p := &picture{w: b.Dx(), h: b.Dy(), rgb: deflate(rgb)}
	if !opaque {
		p.alpha = deflate(alpha)
	}
	return p, nil
}

// add adds the picture to the update as an image XObject.
func (p *picture) add(u *pdf.Update) pdf.Ref {
	d := pdf.Dict{"Type": pdf.Name("XObject"), "Subtype": pdf.Name("Image"), "Width": int64(p.w), "Height": int64(p.h),
		"ColorSpace": pdf.Name("DeviceRGB"), "BitsPerComponent": int64(8), "Filter": pdf.Name("FlateDecode")}
	if p.alpha != nil {
		d["SMask"] = u.Add(&pdf.Stream{Dict: pdf.Dict{"Type": pdf.Name("XObject"), "Subtype": pdf.Name("Image"),
			"Width": int64(p.w), "Height": int64(p.h), "ColorSpace": pdf.Name("DeviceGray"), "BitsPerComponent": int64(8),
			"Filter": pdf.Name("FlateDecode")}, Data: p.alpha})
	}
	return u.Add(&pdf.Stream{Dict: d, Data: p.rgb})
}

// deflaters holds zlib writers for deflate: a new one clears about a
// megabyte of state, which cost more than compressing the pictures of an
// appearance (0.7 ms a stamp in the profile).
var deflaters sync.Pool

func deflate(b []byte) []byte {
	var out bytes.Buffer
	w, ok := deflaters.Get().(*zlib.Writer)
	if ok {
		w.Reset(&out)
	} else {
		w, _ = zlib.NewWriterLevel(&out, zlib.BestSpeed) // a valid level: cannot fail
	}
	w.Write(b)
	w.Close()
	deflaters.Put(w)
	return out.Bytes()
}

// pdfDate formats t as a PDF date (ISO 32000-1 §7.9.4): D:YYYYMMDDHHmmSS+HH'mm'.
func pdfDate(t time.Time) string {
	s := t.Format("D:20060102150405-07'00'")
	if _, off := t.Zone(); off == 0 {
		s = t.Format("D:20060102150405") + "Z"
	}
	return s
}

// parsePDFDate reads a PDF date, as signers write it, more or less strictly.
func parsePDFDate(s string) (time.Time, bool) {
	if len(s) > 2 && s[:2] == "D:" {
		s = s[2:]
	}
	for _, layout := range []string{"20060102150405-07'00'", "20060102150405-07'00", "20060102150405Z07'00'", "20060102150405Z", "20060102150405"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// decodeText reads a PDF text string: UTF-16BE with a BOM, UTF-8 with a
// BOM (PDF 2.0), or PDFDocEncoding read as Latin-1.
func decodeText(b pdf.String) string {
	switch {
	case len(b) >= 2 && b[0] == 0xfe && b[1] == 0xff:
		u := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		}
		return string(utf16.Decode(u))
	case len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf:
		return string(b[3:])
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
