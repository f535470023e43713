package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sealmail/internal/durable"
	"sealmail/mailstore"
	"sealmail/mailstore/blob/disk"
)

var backupCmd = &command{name: "backup", short: "copy the whole data directory, consistently, while serving", run: backup}

func backup(ctx context.Context, args []string) (err error) {
	f := newFlags("backup", "DEST\n\n"+
		"DEST must not exist; it becomes a complete data directory: 'sealmail serve --data DEST'\n"+
		"runs from it as is. The server may keep running meanwhile.")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	data, dest := *f.data, pos[0]
	if inside, err := within(dest, data); err != nil {
		return err
	} else if inside {
		return fmt.Errorf("%s is inside the data directory %s; back up to a directory outside it", dest, data)
	}
	s, err := open(data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := os.Mkdir(dest, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; backup writes a new directory, so name one that does not exist yet", dest)
		}
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dest)
			err = fmt.Errorf("%w (removed the incomplete %s)", err, dest)
		}
	}()
	n, err := copyTree(data, dest)
	if err != nil {
		return err
	}
	blobs, err := disk.Open(filepath.Join(dest, mailstore.BlobDir))
	if err != nil {
		return err
	}
	defer blobs.Close()
	if err := s.Backup(ctx, filepath.Join(dest, mailstore.DBFile), blobs); err != nil {
		return err
	}
	fmt.Printf("backed up %s to %s (database, message content and %d other files)\n", data, dest, n)
	fmt.Printf("to run from it: sealmail serve --data %s\n", dest)
	return nil
}

// within reports whether path is dir or lies below it.
func within(path, dir string) (bool, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return false, err
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)), nil
}

// copyTree copies every file and directory of src but the database and the
// message content into the existing directory dst, keeping permissions and
// syncing each file, and returns the number of files copied. The database and
// the content are copied by the store, which alone can take a consistent
// snapshot of them.
func copyTree(src, dst string) (int, error) {
	skip := map[string]bool{}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		skip[mailstore.DBFile+suffix] = true
	}
	var n int
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." || skip[rel] {
			return nil
		}
		if rel == mailstore.BlobDir && d.IsDir() {
			return fs.SkipDir
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(to, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.Type().IsRegular():
			n++
			return copyFile(path, to, info.Mode().Perm())
		}
		fmt.Fprintf(os.Stderr, "sealmail: backup: skipped %s: not a regular file, directory or symlink\n", path)
		return nil
	})
	if err != nil {
		return n, err
	}
	// A synced file is durable only once its directory entry is too.
	err = filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return durable.SyncDir(path)
	})
	return n, err
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}
