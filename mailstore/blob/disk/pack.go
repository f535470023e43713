package disk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sealmail/internal/durable"
	"sealmail/mailstore/blob"
)

// Contents smaller than packMax are appended to pack files rather than given
// a file each: a 4 KiB message then costs no inode, no create, no directory
// entry and no fsync of its own, and takes its bytes rather than whole 4 KiB
// blocks. Each process appends to a pack of its own, DIR/packs/NAME.pack, and
// starts a new one past packRoll or when it starts again (so a crash leaves
// at most a torn record at the end of a pack nobody writes any more).
//
// A record is
//
//	"SMP1" | size (8 bytes, big-endian) | SHA-256 (32 bytes) | content | '\n'
//
// and its locator (blob.Ref.Loc) is "NAME:OFFSET". Readers check the header
// against the sum they were given, so a wrong locator never serves other
// content. Records are never modified: Delete punches a hole over the record
// (the header reads as zeros afterwards), and also over the rest of the
// 4 KiB blocks at its ends when what is there is deleted too, so the blocks
// return to the filesystem. The first byte of a header and the last byte of
// a record are never zero, which is how zeros are known to be deleted
// records: a live neighbour's edge is never zero.
//
// Sync is one fdatasync per pack touched by a group commit, however many
// records it holds.
const (
	packDir  = "packs"
	packMax  = 1 << 20
	packRoll = 64 << 20
	hdrSize  = 4 + 8 + 32
	recEnd   = '\n'
	block    = 4096
)

var packMagic = []byte("SMP1")

// pack is a pack this process appends to, or did until it rolled over and
// some Puts were still writing into it.
type pack struct {
	name    string
	f       *os.File
	end     int64 // where the next record goes
	writing int   // Puts writing into it now
	rolled  bool  // takes no more records; closed once writing is 0
}

func (s *Store) packPath(name string) string {
	return filepath.Join(s.dir, packDir, name+".pack")
}

func packLoc(name string, off int64) string { return name + ":" + strconv.FormatInt(off, 10) }

// parseLoc reads a locator made by packLoc; it accepts nothing else, so a
// damaged locator cannot name a file outside the packs.
func parseLoc(loc string) (string, int64, error) {
	name, o, ok := strings.Cut(loc, ":")
	off, err := strconv.ParseInt(o, 10, 64)
	if !ok || err != nil || off < 0 || len(name) != 16 || strings.Trim(name, "0123456789abcdef") != "" {
		return "", 0, fmt.Errorf("%w: locator %q names no pack record", blob.ErrCorrupt, loc)
	}
	return name, off, nil
}

// putPacked appends the content to this process's pack.
func (s *Store) putPacked(sum [32]byte, r io.Reader, size int64) (string, error) {
	n := hdrSize + size + 1
	rec := make([]byte, n)
	copy(rec, packMagic)
	binary.BigEndian.PutUint64(rec[4:], uint64(size))
	copy(rec[12:], sum[:])
	got, err := io.ReadFull(r, rec[hdrSize:hdrSize+size])
	if err == nil {
		var one [1]byte
		if k, _ := r.Read(one[:]); k > 0 {
			err = fmt.Errorf("content is more than %d bytes", size)
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = fmt.Errorf("content is %d bytes, expected %d", got, size)
	}
	if err != nil {
		return "", err
	}
	rec[n-1] = recEnd
	p, off, err := s.reserve(n)
	if err != nil {
		return "", err
	}
	_, err = p.f.WriteAt(rec, off)
	s.release(p)
	if err != nil {
		// What was written is a record nothing refers to (or a torn one at
		// the end): an orphan for 'sealmail check --repair'.
		return "", err
	}
	return packLoc(p.name, off), nil
}

// reserve takes n bytes at the end of the active pack, starting a new pack
// when there is none or this one is full.
func (s *Store) reserve(n int64) (*pack, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil || s.active.end > 0 && s.active.end+n > s.rollAt {
		if err := s.roll(); err != nil {
			return nil, 0, err
		}
	}
	p := s.active
	off := p.end
	p.end += n
	p.writing++
	return p, off, nil
}

func (s *Store) release(p *pack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.writing--
	s.closeIdle(p)
}

// roll starts a new pack. Its directory entry is synced now, so that a
// group commit's Sync need only sync the pack's data. s.mu is held.
func (s *Store) roll() error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	name := hex.EncodeToString(b[:])
	path := s.packPath(name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// Deleters leave the bytes around a record alone while the pack is
	// written: they could be a record reserved and not written yet.
	if err := lockShared(f); err == nil {
		err = durable.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if old := s.active; old != nil {
		old.rolled = true
		s.closeIdle(old)
	}
	s.active = &pack{name: name, f: f}
	return nil
}

func (s *Store) closeIdle(p *pack) {
	if p.rolled && p.writing == 0 {
		p.f.Close()
	}
}

// Close closes the pack this process appends to; later Puts start a new one.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return nil
	}
	s.active.rolled = true
	s.closeIdle(s.active)
	s.active = nil
	return nil
}

// withPack calls fn with the pack's file: the one this process appends to
// if it is that one (saving an open and a close on the hot path of delivery),
// else the file opened for reading.
func (s *Store) withPack(name string, fn func(f *os.File) error) error {
	s.mu.Lock()
	p := s.active
	if p != nil && p.name == name {
		p.writing++ // keeps it open
		s.mu.Unlock()
		defer s.release(p)
		return fn(p.f)
	}
	s.mu.Unlock()
	f, err := os.Open(s.packPath(name))
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(f)
}

// syncPack makes a pack's records durable.
func (s *Store) syncPack(name string) error {
	return s.withPack(name, syncData)
}

// readHeader reads the header of the record at off and checks it against
// sum. It returns the content's size.
func readHeader(f *os.File, off int64, sum [32]byte) (int64, error) {
	var h [hdrSize]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("record at %d is past the end of %s: %w", off, filepath.Base(f.Name()), fs.ErrNotExist)
		}
		return 0, err
	}
	if h == [hdrSize]byte{} {
		return 0, fmt.Errorf("record at %d of %s: %w", off, filepath.Base(f.Name()), fs.ErrNotExist)
	}
	size := int64(binary.BigEndian.Uint64(h[4:]))
	if !bytes.Equal(h[:4], packMagic) || !bytes.Equal(h[12:], sum[:]) || size < 0 || size >= packMax {
		return 0, fmt.Errorf("%w: the record at %d of %s is not %s", blob.ErrCorrupt, off, filepath.Base(f.Name()), hex.EncodeToString(sum[:]))
	}
	return size, nil
}

func (s *Store) openPacked(ref blob.Ref, off, n int64) (io.ReadCloser, int64, error) {
	name, rec, err := parseLoc(ref.Loc)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.packPath(name))
	if err != nil {
		return nil, 0, err
	}
	size, err := readHeader(f, rec, ref.Sum)
	if err == nil {
		err = fits(f, rec, size)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	off = min(max(off, 0), size)
	if n < 0 || off+n > size {
		n = size - off
	}
	return &section{io.NewSectionReader(f, rec+hdrSize+off, n), f}, size, nil
}

// fits checks that the record at off holding size bytes ends within the
// pack: a pack cut short loses the records at its end, and a read must not
// mistake that for a short content.
func fits(f *os.File, off, size int64) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() < off+hdrSize+size+1 {
		return fmt.Errorf("%w: the record at %d of %s is cut short", blob.ErrCorrupt, off, filepath.Base(f.Name()))
	}
	return nil
}

func (s *Store) statPacked(ref blob.Ref) (int64, error) {
	name, rec, err := parseLoc(ref.Loc)
	if err != nil {
		return 0, err
	}
	var size int64
	err = s.withPack(name, func(f *os.File) error {
		size, err = readHeader(f, rec, ref.Sum)
		return err
	})
	return size, err
}

// deletePacked punches a hole over the record. When no process appends to
// the pack, the hole also covers the rest of the blocks at the record's ends
// if what is there is zeros (deleted records), so that deleting every record
// of a block frees that block whatever the order.
func (s *Store) deletePacked(ref blob.Ref) error {
	name, rec, err := parseLoc(ref.Loc)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.packPath(name), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := readHeader(f, rec, ref.Sum)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	start, end := rec, rec+hdrSize+size+1
	if tryLockExclusive(f) {
		defer unlock(f)
		if b := start &^ (block - 1); b < start && zeros(f, b, start-b) {
			start = b
		}
		e := (end + block - 1) &^ (block - 1)
		if info, err := f.Stat(); err == nil {
			e = min(e, max(end, info.Size())) // nothing to free past the end
		}
		if e > end && zeros(f, end, e-end) {
			end = e
		}
	}
	return punch(f, start, end-start)
}

// zeros reports whether n bytes at off read as zeros (or are past the end).
func zeros(f *os.File, off, n int64) bool {
	buf := make([]byte, n)
	k, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	return bytes.Count(buf[:k], []byte{0}) == k
}

// listPacks calls fn for every record in the packs. It stops reading a pack
// at bytes that are neither a record nor zeros: a record torn by a crash at
// the end of a pack.
func (s *Store) listPacks(ctx context.Context, fn func(ref blob.Ref, size int64) error) error {
	entries, err := os.ReadDir(filepath.Join(s.dir, packDir))
	if err != nil {
		return err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pack")
		if !ok || len(name) != 16 {
			continue
		}
		if err := s.listPack(name, fn); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) listPack(name string, fn func(ref blob.Ref, size int64) error) error {
	f, err := os.Open(s.packPath(name))
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	end := info.Size()
	var h [hdrSize]byte
	for off := int64(0); off < end; {
		if off, err = nextData(f, off); err != nil {
			return nil // holes to the end
		}
		if _, err := f.ReadAt(h[:], off); err != nil {
			return nil // torn at the end
		}
		if h[0] == 0 {
			off = skipZeros(f, off, end)
			continue
		}
		size := int64(binary.BigEndian.Uint64(h[4:]))
		if !bytes.Equal(h[:4], packMagic) || size < 0 || size >= packMax {
			return nil
		}
		var ref blob.Ref
		copy(ref.Sum[:], h[12:])
		ref.Loc = packLoc(name, off)
		if err := fn(ref, size); err != nil {
			return err
		}
		off += hdrSize + size + 1
	}
	return nil
}

// skipZeros returns the offset of the first byte from off that is not zero.
func skipZeros(f *os.File, off, end int64) int64 {
	buf := make([]byte, block)
	for off < end {
		k, err := f.ReadAt(buf, off)
		if i := bytes.IndexFunc(buf[:k], func(r rune) bool { return r != 0 }); i >= 0 {
			return off + int64(i)
		}
		off += int64(k)
		if err != nil {
			break
		}
	}
	return end
}
