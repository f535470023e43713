// Package disk is the default blob store: message content in a local
// directory, contents under 1 MiB appended to pack files (pack.go), larger
// ones in a file each.
//
// Layout of the files: DIR/ab/abcdef… — the 64 hex digits of the content's SHA-256, in one
// of 256 directories named by its first two digits (created at Open, so a Put
// never creates a directory whose own entry would need syncing). A name never
// holds a partial content, and a file is never modified, only deleted. On
// Linux the content is written to an unnamed file (O_TMPFILE) in its
// directory, which a crash leaves nowhere, then linked under its name;
// elsewhere, or where the filesystem cannot, it is written in DIR/tmp/ and
// renamed into place, and files left in tmp/ by a crash are removed at the
// next Open once an hour old.
//
// Put does not sync. Sync takes the contents of many Puts — a whole group
// commit's — and syncs each pack, file and directory they landed in once, all
// in parallel, so concurrent deliveries share the filesystem's commits
// instead of paying one file-and-directory fsync pair each in turn.
//
// The package satisfies mailstore.BlobStore without importing mailstore, so
// that mailstore can open it as its default.
package disk

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"sealmail/internal/durable"
	"sealmail/mailstore/blob"
)

// Store is a blob store in one local directory. It is safe for concurrent use,
// also by several processes.
type Store struct {
	dir  string
	anon bool // Put makes unnamed files (O_TMPFILE) rather than temporary names

	mu     sync.Mutex
	active *pack // where this process appends; nil until the first Put
	rollAt int64 // a pack takes no new record past this size
}

const tmpDir = "tmp"

// Open opens (creating if needed) the blob store in dir.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, rollAt: packRoll}
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	created := false
	if err := os.Mkdir(filepath.Join(dir, packDir), 0o700); err == nil {
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	for i := 0; i < 256; i++ {
		err := os.Mkdir(filepath.Join(dir, fmt.Sprintf("%02x", i)), 0o700)
		if err == nil {
			created = true
		} else if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	if created {
		if err := durable.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
		if err := durable.SyncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	s.removeStaleTmp()
	s.anon = anonWorks(filepath.Join(dir, tmpDir)) == nil
	return s, nil
}

// staleTmp is when a file in tmp/ is surely not a Put still running in some process.
const staleTmp = time.Hour

func (s *Store) removeStaleTmp() {
	entries, _ := os.ReadDir(filepath.Join(s.dir, tmpDir))
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTmp {
			os.Remove(filepath.Join(s.dir, tmpDir, e.Name()))
		}
	}
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the file that holds sum.
func (s *Store) Path(sum [32]byte) string {
	name := hex.EncodeToString(sum[:])
	return filepath.Join(s.dir, name[:2], name)
}

// Locate returns the file holding a content and where in it the content
// starts: for tests that damage content on purpose, and for the admin.
func (s *Store) Locate(ref blob.Ref) (string, int64, error) {
	if ref.Loc == "" {
		return s.Path(ref.Sum), 0, nil
	}
	name, off, err := parseLoc(ref.Loc)
	return s.packPath(name), off + hdrSize, err
}

// Put appends a content under packMax to this process's pack and returns its
// locator; a larger one is written to its own file, unless a file of the same
// size already holds it, and its locator is empty.
func (s *Store) Put(ctx context.Context, sum [32]byte, r io.Reader, size int64) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if size < packMax {
		loc, err := s.putPacked(sum, r, size)
		if err != nil {
			return "", fmt.Errorf("blob store: put %x: %w", sum, err)
		}
		return loc, nil
	}
	path := s.Path(sum)
	if info, err := os.Stat(path); err == nil && info.Size() == size {
		return "", nil
	}
	var err error
	if s.anon {
		err = s.putAnon(path, r, size)
	} else {
		err = s.putTmp(path, r, size)
	}
	if err != nil {
		return "", fmt.Errorf("blob store: put %s: %w", filepath.Base(path), err)
	}
	return "", nil
}

// putAnon writes the content into an unnamed file in its directory and
// links it there under its name.
func (s *Store) putAnon(path string, r io.Reader, size int64) error {
	f, err := createAnon(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := copyAll(f, r, size); err != nil {
		return err
	}
	err = linkAnon(f, path)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Another Put of the same content got there first, or a damaged file
	// of the wrong size holds the name: replace the latter.
	if info, err := os.Stat(path); err == nil && info.Size() == size {
		return nil
	}
	tmp := filepath.Join(s.dir, tmpDir, fmt.Sprintf("put-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := linkAnon(f, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// putTmp writes the content under a temporary name in tmp/ and renames it
// into place: for filesystems without unnamed files.
func (s *Store) putTmp(path string, r io.Reader, size int64) error {
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "put-")
	if err != nil {
		return err
	}
	err = copyAll(f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func copyAll(f *os.File, r io.Reader, size int64) error {
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("content is %d bytes, expected %d", n, size)
	}
	return err
}

// syncWorkers bounds the fsyncs in flight at once: enough for the filesystem
// to fold them into few journal commits, few enough not to swamp a small machine.
const syncWorkers = 32

// Sync makes the contents durable: each pack holding one of them is synced
// once, and so is each file and each directory holding a file, all at the
// same time: each must be durable before the commit that refers to the
// content, in no particular order, and syncs in flight together share the
// filesystem's journal commits.
func (s *Store) Sync(ctx context.Context, refs []blob.Ref) error {
	items := make(map[string]func(string) error, 2*len(refs))
	for _, ref := range refs {
		if ref.Loc != "" {
			name, _, err := parseLoc(ref.Loc)
			if err != nil {
				return fmt.Errorf("blob store: sync: %w", err)
			}
			items[name] = s.syncPack
			continue
		}
		p := s.Path(ref.Sum)
		items[p] = syncFile
		items[filepath.Dir(p)] = durable.SyncDir
	}
	if err := parallel(items); err != nil {
		return fmt.Errorf("blob store: sync: %w", err)
	}
	return nil
}

func parallel(items map[string]func(string) error) error {
	type item struct {
		path string
		fn   func(string) error
	}
	work := make(chan item)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := 0; i < min(syncWorkers, len(items)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := it.fn(it.path); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for p, fn := range items {
		work <- item{p, fn}
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// syncFile fsyncs a content's file. One deleted since its Put is no error:
// only reclaim deletes, and the transaction that refers to the content
// finds out and puts it again (mailstore's claimContent).
func syncFile(path string) error {
	if err := durable.SyncFile(path); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Open reads n bytes from off (n < 0: to the end) and returns the content's size.
func (s *Store) Open(ctx context.Context, ref blob.Ref, off, n int64) (io.ReadCloser, int64, error) {
	if ref.Loc != "" {
		return s.openPacked(ref, off, n)
	}
	f, err := os.Open(s.Path(ref.Sum))
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	size := info.Size()
	if n < 0 {
		n = max(0, size-off)
	}
	return &section{io.NewSectionReader(f, off, n), f}, size, nil
}

type section struct {
	*io.SectionReader
	f *os.File
}

func (s *section) Close() error { return s.f.Close() }

// Stat returns the size of the content.
func (s *Store) Stat(ctx context.Context, ref blob.Ref) (int64, error) {
	if ref.Loc != "" {
		return s.statPacked(ref)
	}
	info, err := os.Stat(s.Path(ref.Sum))
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// Delete removes the content. Nothing is synced: should the removal be lost
// in a crash, the content is an orphan that 'sealmail check --repair'
// removes, never a reference to missing content.
func (s *Store) Delete(ctx context.Context, ref blob.Ref) error {
	var err error
	if ref.Loc != "" {
		err = s.deletePacked(ref)
	} else if err = os.Remove(s.Path(ref.Sum)); errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	return nil
}

// List calls fn for every stored content: the records of the packs, then
// the files. Names that are not a sum in its right directory are skipped.
func (s *Store) List(ctx context.Context, fn func(ref blob.Ref, size int64) error) error {
	if err := s.listPacks(ctx, fn); err != nil {
		return fmt.Errorf("blob store: list: %w", err)
	}
	for i := 0; i < 256; i++ {
		shard := fmt.Sprintf("%02x", i)
		entries, err := os.ReadDir(filepath.Join(s.dir, shard))
		if err != nil {
			return fmt.Errorf("blob store: list: %w", err)
		}
		for _, e := range entries {
			var sum [32]byte
			name := e.Name()
			if len(name) != 64 || name[:2] != shard || !e.Type().IsRegular() {
				continue
			}
			if _, err := hex.Decode(sum[:], []byte(name)); err != nil {
				continue
			}
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted meanwhile
				}
				return fmt.Errorf("blob store: list: %w", err)
			}
			if err := fn(blob.Ref{Sum: sum}, info.Size()); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
