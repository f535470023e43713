package testtool

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// Tmpfs mounts a file system of size bytes for the test, so that it can be
// filled, and returns its directory. Mounting takes root: elsewhere the test
// is skipped, except in CI, which runs as root and where a skip would hide a
// failure.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs (needs root, which CI has): %v", err)
		}
		t.Skipf("mount tmpfs: %v (run as root)", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// Fill writes a file of size bytes at path, or as much of it as fits.
func Fill(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
}

// Free returns the bytes available to an unprivileged writer on dir's file system.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}
