package pdf

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// maxDecoded bounds what one stream may decode to, against zip bombs in
// the few streams this package decodes (cross-reference and object streams).
const maxDecoded = 256 << 20

// maxSections bounds the cross-reference sections followed through /Prev.
const maxSections = 10000

// xrefEntry locates an object: at an offset in the file, or as the index-th
// object of object stream stream.
type xrefEntry struct {
	offset int64
	gen    int
	stream int // object stream number; 0 for an object at offset
	index  int
	free   bool
}

// File is a parsed PDF file. It keeps data and reads objects on demand.
type File struct {
	data    []byte
	xref    map[int]xrefEntry
	trailer Dict
	// StartXref is the offset of the last cross-reference section.
	StartXref int64
	// XrefStream reports whether the last section is a cross-reference
	// stream, so that an update writes the same kind.
	XrefStream bool
	cache      map[int]Object
	objStms    map[int]*objStm
}

type objStm struct {
	data    []byte
	offsets map[int]int // object number → offset in data
}

// Parse reads the cross-reference sections of data, newest first. It fails
// on a file whose structure is broken: a signer must not append to what it
// cannot read, and a verifier reports it.
func Parse(data []byte) (*File, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(data[:min(len(data), 1024)], "\x00\t\r\n "), []byte("%PDF-")) {
		if !bytes.Contains(data[:min(len(data), 1024)], []byte("%PDF-")) {
			return nil, errors.New("pdf: no %PDF- header")
		}
	}
	start, err := startXref(data)
	if err != nil {
		return nil, err
	}
	f := &File{data: data, xref: map[int]xrefEntry{}, StartXref: start, cache: map[int]Object{}, objStms: map[int]*objStm{}}
	seen := map[int64]bool{}
	for off, first := start, true; ; first = false {
		if seen[off] || len(seen) > maxSections {
			return nil, fmt.Errorf("pdf: cross-reference sections loop at %d", off)
		}
		seen[off] = true
		trailer, isStream, err := f.section(off)
		if err != nil {
			return nil, err
		}
		if first {
			f.trailer, f.XrefStream = trailer, isStream
		}
		// A hybrid file's classic trailer points to a cross-reference
		// stream holding the objects in object streams.
		if x, ok := trailer["XRefStm"].(int64); ok && !seen[x] {
			seen[x] = true
			if _, _, err := f.section(x); err != nil {
				return nil, err
			}
		}
		prev, ok := trailer["Prev"].(int64)
		if !ok {
			break
		}
		off = prev
	}
	if _, ok := f.trailer["Root"].(Ref); !ok {
		return nil, errors.New("pdf: trailer has no /Root")
	}
	return f, nil
}

// startXref finds the offset after the last startxref keyword.
func startXref(data []byte) (int64, error) {
	tail := data[max(0, len(data)-2048):]
	i := bytes.LastIndex(tail, []byte("startxref"))
	if i < 0 {
		return 0, errors.New("pdf: no startxref")
	}
	p := &parser{data: tail, pos: i + len("startxref")}
	n, err := strconv.ParseInt(string(p.keyword()), 10, 64)
	if err != nil || n < 0 || n >= int64(len(data)) {
		return 0, errors.New("pdf: bad startxref offset")
	}
	return n, nil
}

// section reads the cross-reference section at off into f.xref, keeping
// entries already read (from newer sections), and returns its trailer.
func (f *File) section(off int64) (Dict, bool, error) {
	if off < 0 || off >= int64(len(f.data)) {
		return nil, false, fmt.Errorf("pdf: cross-reference offset %d outside the file", off)
	}
	p := &parser{data: f.data, pos: int(off)}
	p.skip()
	if bytes.HasPrefix(f.data[p.pos:], []byte("xref")) {
		p.pos += 4
		t, err := f.table(p)
		return t, false, err
	}
	_, o, err := p.indirect(f.length)
	if err != nil {
		return nil, false, fmt.Errorf("pdf: cross-reference at %d: %w", off, err)
	}
	s, ok := o.(*Stream)
	if !ok || s.Dict.Name("Type") != "XRef" {
		return nil, false, fmt.Errorf("pdf: no cross-reference at %d", off)
	}
	return s.Dict, true, f.xrefStream(s)
}

// table reads a classic table: subsections "first count" of 20-byte entries.
func (f *File) table(p *parser) (Dict, error) {
	for {
		save := p.pos
		kw := p.keyword()
		if string(kw) == "trailer" {
			o, err := p.object()
			if err != nil {
				return nil, err
			}
			d, ok := o.(Dict)
			if !ok {
				return nil, p.errorf("trailer is not a dictionary")
			}
			return d, nil
		}
		first, err1 := strconv.Atoi(string(kw))
		count, err2 := strconv.Atoi(string(p.keyword()))
		if err1 != nil || err2 != nil || first < 0 || count < 0 || count > len(f.data)/18 {
			p.pos = save
			return nil, p.errorf("bad cross-reference subsection")
		}
		for i := 0; i < count; i++ {
			offset, err1 := strconv.ParseInt(string(p.keyword()), 10, 64)
			gen, err2 := strconv.Atoi(string(p.keyword()))
			typ := p.keyword()
			if err1 != nil || err2 != nil || (string(typ) != "n" && string(typ) != "f") {
				return nil, p.errorf("bad cross-reference entry")
			}
			if _, ok := f.xref[first+i]; !ok {
				f.xref[first+i] = xrefEntry{offset: offset, gen: gen, free: typ[0] == 'f'}
			}
		}
	}
}

// xrefStream reads a cross-reference stream's entries.
func (f *File) xrefStream(s *Stream) error {
	data, err := Decode(s)
	if err != nil {
		return fmt.Errorf("pdf: cross-reference stream: %w", err)
	}
	w, ok := s.Dict["W"].(Array)
	if !ok || len(w) != 3 {
		return errors.New("pdf: cross-reference stream without /W")
	}
	var ws [3]int
	for i, v := range w {
		n, ok := v.(int64)
		if !ok || n < 0 || n > 8 {
			return errors.New("pdf: bad /W")
		}
		ws[i] = int(n)
	}
	size, _ := s.Dict["Size"].(int64)
	index := Array{int64(0), size}
	if a, ok := s.Dict["Index"].(Array); ok {
		index = a
	}
	row := ws[0] + ws[1] + ws[2]
	if row == 0 {
		return errors.New("pdf: bad /W")
	}
	pos := 0
	for i := 0; i+1 < len(index); i += 2 {
		first, ok1 := index[i].(int64)
		count, ok2 := index[i+1].(int64)
		if !ok1 || !ok2 || first < 0 || count < 0 {
			return errors.New("pdf: bad /Index")
		}
		for j := int64(0); j < count; j++ {
			if pos+row > len(data) {
				return errors.New("pdf: cross-reference stream too short")
			}
			field := func(k int) (int64, bool) {
				var v int64
				for _, c := range data[pos : pos+ws[k]] {
					v = v<<8 | int64(c)
				}
				pos += ws[k]
				return v, ws[k] > 0
			}
			typ, given := field(0)
			if !given {
				typ = 1
			}
			a, _ := field(1)
			b, _ := field(2)
			num := int(first + j)
			if _, ok := f.xref[num]; ok {
				continue
			}
			switch typ {
			case 0:
				f.xref[num] = xrefEntry{free: true}
			case 1:
				f.xref[num] = xrefEntry{offset: a, gen: int(b)}
			case 2:
				f.xref[num] = xrefEntry{stream: int(a), index: int(b)}
			}
		}
	}
	return nil
}

// Trailer returns the newest trailer dictionary.
func (f *File) Trailer() Dict { return f.trailer }

// Size is one more than the highest object number in use.
func (f *File) Size() int {
	n, _ := f.trailer["Size"].(int64)
	for k := range f.xref {
		if k+1 > int(n) {
			n = int64(k + 1)
		}
	}
	return int(n)
}

// Data returns the file's bytes.
func (f *File) Data() []byte { return f.data }

// length resolves a stream's /Length.
func (f *File) length(o Object) (int, bool) {
	switch v := o.(type) {
	case int64:
		return int(v), true
	case Ref:
		e, ok := f.xref[v.Num]
		if !ok || e.free || e.stream != 0 {
			return 0, false
		}
		p := &parser{data: f.data, pos: int(e.offset)}
		_, o, err := p.indirect(func(Object) (int, bool) { return 0, false })
		n, ok := o.(int64)
		return int(n), err == nil && ok
	}
	return 0, false
}

// Object returns the object numbered num, or nil when it is free or absent.
func (f *File) Object(num int) (Object, error) {
	if o, ok := f.cache[num]; ok {
		return o, nil
	}
	e, ok := f.xref[num]
	if !ok || e.free {
		return nil, nil
	}
	var o Object
	var err error
	if e.stream != 0 {
		o, err = f.fromStream(num, e)
	} else {
		if e.offset < 0 || e.offset >= int64(len(f.data)) {
			return nil, fmt.Errorf("pdf: object %d at offset %d outside the file", num, e.offset)
		}
		p := &parser{data: f.data, pos: int(e.offset)}
		var ref Ref
		ref, o, err = p.indirect(f.length)
		if err == nil && ref.Num != num {
			err = fmt.Errorf("pdf: offset %d holds object %d, not %d", e.offset, ref.Num, num)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pdf: object %d: %w", num, err)
	}
	f.cache[num] = o
	return o, nil
}

// fromStream reads an object from a compressed object stream.
func (f *File) fromStream(num int, e xrefEntry) (Object, error) {
	os := f.objStms[e.stream]
	if os == nil {
		if f.xref[e.stream].stream != 0 {
			return nil, errors.New("object stream inside an object stream")
		}
		o, err := f.Object(e.stream)
		if err != nil {
			return nil, err
		}
		s, ok := o.(*Stream)
		if !ok || s.Dict.Name("Type") != "ObjStm" {
			return nil, fmt.Errorf("object %d is not an object stream", e.stream)
		}
		data, err := Decode(s)
		if err != nil {
			return nil, err
		}
		n, _ := s.Dict["N"].(int64)
		first, _ := s.Dict["First"].(int64)
		if first < 0 || int(first) > len(data) || n < 0 || n > int64(len(data)) {
			return nil, errors.New("bad object stream header")
		}
		os = &objStm{data: data, offsets: map[int]int{}}
		p := &parser{data: data[:first]}
		for i := int64(0); i < n; i++ {
			a, err1 := strconv.Atoi(string(p.keyword()))
			b, err2 := strconv.Atoi(string(p.keyword()))
			if err1 != nil || err2 != nil || int(first)+b > len(data) {
				return nil, errors.New("bad object stream header")
			}
			os.offsets[a] = int(first) + b
		}
		f.objStms[e.stream] = os
	}
	off, ok := os.offsets[num]
	if !ok {
		return nil, fmt.Errorf("not in object stream %d", e.stream)
	}
	p := &parser{data: os.data, pos: off}
	return p.object()
}

// Resolve follows o while it is a reference.
func (f *File) Resolve(o Object) (Object, error) {
	for range 32 {
		r, ok := o.(Ref)
		if !ok {
			return o, nil
		}
		var err error
		if o, err = f.Object(r.Num); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("pdf: reference chain too long")
}

// Dict resolves o to a dictionary (a stream's dictionary too), or nil.
func (f *File) Dict(o Object) Dict {
	o, _ = f.Resolve(o)
	switch v := o.(type) {
	case Dict:
		return v
	case *Stream:
		return v.Dict
	}
	return nil
}

// Array resolves o to an array, or nil.
func (f *File) Array(o Object) Array {
	o, _ = f.Resolve(o)
	a, _ := o.(Array)
	return a
}

// Int resolves o to an integer (a real is truncated).
func (f *File) Int(o Object) (int64, bool) {
	o, _ = f.Resolve(o)
	switch v := o.(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), true
	}
	return 0, false
}

// Num resolves o to a number.
func (f *File) Num(o Object) (float64, bool) {
	o, _ = f.Resolve(o)
	switch v := o.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// Catalog returns the document catalog and its reference.
func (f *File) Catalog() (Ref, Dict, error) {
	r := f.trailer["Root"].(Ref)
	d := f.Dict(r)
	if d == nil {
		return r, nil, errors.New("pdf: no document catalog")
	}
	return r, d, nil
}

// Pages returns the page objects in order.
func (f *File) Pages() ([]Ref, error) {
	_, cat, err := f.Catalog()
	if err != nil {
		return nil, err
	}
	root, ok := cat["Pages"].(Ref)
	if !ok {
		return nil, errors.New("pdf: catalog has no /Pages reference")
	}
	var out []Ref
	seen := map[int]bool{}
	var walk func(r Ref, depth int) error
	walk = func(r Ref, depth int) error {
		if seen[r.Num] || depth > maxNesting {
			return errors.New("pdf: page tree loops")
		}
		seen[r.Num] = true
		d := f.Dict(r)
		if d == nil {
			return fmt.Errorf("pdf: page tree node %v is not a dictionary", r)
		}
		if d.Name("Type") == "Page" || d["Kids"] == nil {
			out = append(out, r)
			return nil
		}
		for _, k := range f.Array(d["Kids"]) {
			kr, ok := k.(Ref)
			if !ok {
				return errors.New("pdf: page tree kid is not a reference")
			}
			if err := walk(kr, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("pdf: no pages")
	}
	return out, nil
}

// Inherited returns a page attribute, looked up through its /Parent chain
// as ISO 32000 §7.7.3.4 inherits it (MediaBox, CropBox, Resources, Rotate).
func (f *File) Inherited(page Dict, key Name) Object {
	for range maxNesting {
		if v, ok := page[key]; ok {
			return v
		}
		if page = f.Dict(page["Parent"]); page == nil {
			return nil
		}
	}
	return nil
}

// Decode returns a stream's data with its filters removed. Only what
// structure streams use is supported: FlateDecode with PNG or TIFF
// predictors, and no filter.
func Decode(s *Stream) ([]byte, error) {
	filter := s.Dict["Filter"]
	parms, _ := s.Dict["DecodeParms"].(Dict)
	if a, ok := filter.(Array); ok {
		if len(a) > 1 {
			return nil, errors.New("chained filters are not supported here")
		}
		if len(a) == 1 {
			filter = a[0]
		} else {
			filter = nil
		}
		if pa, ok := s.Dict["DecodeParms"].(Array); ok && len(pa) == 1 {
			parms, _ = pa[0].(Dict)
		}
	}
	switch filter {
	case nil:
		return s.Data, nil
	case Name("FlateDecode"):
	default:
		return nil, fmt.Errorf("filter %v is not supported here", filter)
	}
	r, err := zlib.NewReader(bytes.NewReader(s.Data))
	if err != nil {
		return nil, fmt.Errorf("flate: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxDecoded+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("flate: %w", err)
	}
	if len(data) > maxDecoded {
		return nil, errors.New("stream decodes to too much data")
	}
	return unpredict(data, parms)
}

// unpredict undoes a PNG predictor (ISO 32000 §7.4.4.4; the only kind
// cross-reference streams use in practice).
func unpredict(data []byte, parms Dict) ([]byte, error) {
	pred, _ := parms["Predictor"].(int64)
	if pred < 10 {
		if pred > 1 {
			return nil, fmt.Errorf("predictor %d is not supported here", pred)
		}
		return data, nil
	}
	cols := int64(1)
	if c, ok := parms["Columns"].(int64); ok {
		cols = c
	}
	colors := int64(1)
	if c, ok := parms["Colors"].(int64); ok {
		colors = c
	}
	bpc := int64(8)
	if c, ok := parms["BitsPerComponent"].(int64); ok {
		bpc = c
	}
	if cols <= 0 || cols > 1<<20 || colors <= 0 || colors > 32 || bpc <= 0 || bpc > 16 {
		return nil, errors.New("bad predictor parameters")
	}
	bpp := int(max(1, (colors*bpc+7)/8))
	rowLen := int((cols*colors*bpc + 7) / 8)
	out := make([]byte, 0, len(data))
	prev := make([]byte, rowLen)
	for len(data) > 0 {
		if len(data) < rowLen+1 {
			break
		}
		typ, row := data[0], data[1:rowLen+1]
		data = data[rowLen+1:]
		cur := make([]byte, rowLen)
		for i := 0; i < rowLen; i++ {
			var a, c byte
			if i >= bpp {
				a, c = cur[i-bpp], prev[i-bpp]
			}
			b := prev[i]
			switch typ {
			case 0:
				cur[i] = row[i]
			case 1:
				cur[i] = row[i] + a
			case 2:
				cur[i] = row[i] + b
			case 3:
				cur[i] = row[i] + byte((int(a)+int(b))/2)
			case 4:
				cur[i] = row[i] + paeth(a, b, c)
			default:
				return nil, fmt.Errorf("bad PNG predictor type %d", typ)
			}
		}
		out = append(out, cur...)
		prev = cur
	}
	return out, nil
}

func paeth(a, b, c byte) byte {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := abs(p-int(a)), abs(p-int(b)), abs(p-int(c))
	switch {
	case pa <= pb && pa <= pc:
		return a
	case pb <= pc:
		return b
	}
	return c
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// ChangedSince returns the numbers of the objects whose newest definition
// lies at or after offset end: those a later revision added or replaced.
func (f *File) ChangedSince(end int64) []int {
	var out []int
	for num, e := range f.xref {
		if e.free {
			continue
		}
		off := e.offset
		if e.stream != 0 {
			off = f.xref[e.stream].offset
		}
		if off >= end {
			out = append(out, num)
		}
	}
	slices.Sort(out)
	return out
}
