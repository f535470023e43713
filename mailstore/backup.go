package mailstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database, as of one moment, to dest
// (which must not exist) while the store keeps serving, and syncs it to disk.
func (s *Store) Backup(ctx context.Context, dest string) error {
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("mailstore: backup: %s: %w", dest, ErrExists)
	}
	err := s.read(ctx, func(db *sql.DB) error {
		_, err := db.ExecContext(ctx, `VACUUM INTO ?`, dest)
		return err
	})
	if err != nil {
		return fmt.Errorf("mailstore: backup to %s: %w", dest, err)
	}
	return syncFileAndDir(dest)
}

func syncFileAndDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Check runs SQLite's integrity check and the store's own invariants.
func (s *Store) Check(ctx context.Context) error {
	return s.read(ctx, func(db *sql.DB) error {
		var res string
		if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
			return err
		}
		if res != "ok" {
			return fmt.Errorf("mailstore: integrity check: %s", res)
		}
		var bad int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM blobs b WHERE refs != (SELECT COUNT(*) FROM messages WHERE blob_id = b.id)`).Scan(&bad); err != nil {
			return err
		}
		if bad > 0 {
			return fmt.Errorf("mailstore: %d contents have a wrong reference count", bad)
		}
		return nil
	})
}
