// Package durable makes what was written to files survive a crash: a file's
// data by fsyncing it, its name by fsyncing the directory that holds it.
package durable

import (
	"errors"
	"os"
)

// SyncFile fsyncs the file at path.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// SyncDir fsyncs a directory, making the creation, renaming or removal of
// its entries durable.
func SyncDir(dir string) error {
	return SyncFile(dir)
}
