package pdf

import (
	"errors"
	"fmt"
	"slices"
)

// Update is an incremental update (ISO 32000-1 §7.5.6): objects appended
// after the file's last revision with a cross-reference section of their own
// that points back to the previous one. The earlier bytes are never changed.
type Update struct {
	f    *File
	objs map[int]Object
	next int
}

// NewUpdate starts an update of f. It refuses encrypted files, whose new
// strings and streams this package cannot encrypt.
func NewUpdate(f *File) (*Update, error) {
	if f.trailer["Encrypt"] != nil {
		return nil, errors.New("pdf: the file is encrypted")
	}
	return &Update{f: f, objs: map[int]Object{}, next: f.Size()}, nil
}

// Add appends a new object and returns its reference.
func (u *Update) Add(o Object) Ref {
	r := Ref{Num: u.next}
	u.next++
	u.objs[r.Num] = o
	return r
}

// Set replaces object r in the new revision.
func (u *Update) Set(r Ref, o Object) {
	u.objs[r.Num] = o
}

// Written is an update laid out in bytes: the whole new file, and where
// each object of the update starts in it.
type Written struct {
	Data    []byte
	Offsets map[int]int
}

// Write returns the file with the update appended, its cross-reference
// section of the same kind as the last one (table or stream).
func (u *Update) Write() (*Written, error) {
	return u.write(false)
}

// WriteInPlace is Write for the owner of the parsed data's spare capacity:
// when the update fits there, it is appended in place and the file is not
// copied. The parsed data's own bytes are left as they are.
func (u *Update) WriteInPlace() (*Written, error) {
	return u.write(true)
}

func (u *Update) write(inPlace bool) (*Written, error) {
	// The update is laid out after the old file, then both are copied once
	// into a slice of the final size: appending to a copy of a large file
	// would copy it again whenever the update outgrew a guess.
	old := u.f.data
	base := len(old)
	newline := base > 0 && old[base-1] != '\n' && old[base-1] != '\r'
	if newline {
		base++
	}
	var out []byte // the update; offsets in the file are base+len(out)
	nums := make([]int, 0, len(u.objs)+1)
	for n := range u.objs {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	w := &Written{Offsets: map[int]int{}}
	gens := map[int]int{}
	for _, n := range nums {
		gen := 0
		if e, ok := u.f.xref[n]; ok && !e.free && e.stream == 0 {
			gen = e.gen
		}
		gens[n] = gen
		w.Offsets[n] = base + len(out)
		out = fmt.Appendf(out, "%d %d obj\n", n, gen)
		out = Append(out, u.objs[n])
		out = append(out, "\nendobj\n"...)
	}
	trailer := Dict{"Root": u.f.trailer["Root"], "Prev": u.f.StartXref}
	for _, k := range []Name{"Info", "ID"} {
		if v, ok := u.f.trailer[k]; ok {
			trailer[k] = v
		}
	}
	xrefAt := base + len(out)
	if u.f.XrefStream {
		self := u.next
		nums = append(nums, self)
		w.Offsets[self] = xrefAt
		width := 4
		if xrefAt >= 1<<32 {
			width = 8
		}
		var rows []byte
		for _, n := range nums {
			rows = append(rows, 1)
			for i := width - 1; i >= 0; i-- {
				rows = append(rows, byte(w.Offsets[n]>>(8*i)))
			}
			rows = append(rows, byte(gens[n]>>8), byte(gens[n]))
		}
		trailer["Type"] = Name("XRef")
		trailer["Size"] = int64(self + 1)
		trailer["W"] = Array{int64(1), int64(width), int64(2)}
		trailer["Index"] = subsections(nums)
		out = fmt.Appendf(out, "%d 0 obj\n", self)
		out = Append(out, &Stream{Dict: trailer, Data: rows})
		out = append(out, "\nendobj\n"...)
	} else {
		out = append(out, "xref\n"...)
		idx := subsections(nums)
		k := 0
		for i := 0; i < len(idx); i += 2 {
			first, count := idx[i].(int64), idx[i+1].(int64)
			out = fmt.Appendf(out, "%d %d\n", first, count)
			for j := int64(0); j < count; j++ {
				n := nums[k]
				k++
				out = fmt.Appendf(out, "%010d %05d n\r\n", w.Offsets[n], gens[n])
			}
		}
		trailer["Size"] = int64(u.next)
		out = append(out, "trailer\n"...)
		out = Append(out, trailer)
		out = append(out, '\n')
	}
	out = fmt.Appendf(out, "startxref\n%d\n%%%%EOF\n", xrefAt)
	if inPlace && cap(old) >= base+len(out) {
		w.Data = old
	} else {
		w.Data = make([]byte, 0, base+len(out))
		w.Data = append(w.Data, old...)
	}
	if newline {
		w.Data = append(w.Data, '\n')
	}
	w.Data = append(w.Data, out...)
	return w, nil
}

// subsections groups sorted object numbers into runs: first, count, ….
func subsections(nums []int) Array {
	var a Array
	for i := 0; i < len(nums); {
		j := i + 1
		for j < len(nums) && nums[j] == nums[j-1]+1 {
			j++
		}
		a = append(a, int64(nums[i]), int64(j-i))
		i = j
	}
	return a
}
