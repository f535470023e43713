package disk

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// createAnon opens an unnamed file in dir (O_TMPFILE): a crash before it is
// linked leaves nothing behind, and creating it takes no lock on a shared
// temporary directory: with 16 concurrent creators, creating, writing and
// naming a 4 KiB file cost 194 µs of CPU through one tmp/ directory and
// 32 µs this way (docs/benchmarks.md, session 7).
func createAnon(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// linkAnon gives f, made by createAnon, the name path. It fails with
// fs.ErrExist if path exists.
func linkAnon(f *os.File, path string) error {
	// AT_EMPTY_PATH on the descriptor would need CAP_DAC_READ_SEARCH;
	// the descriptor's /proc link needs nothing.
	proc := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: proc, New: path, Err: err}
	}
	return nil
}

// anonWorks says whether unnamed files can be made and linked in dir: the
// filesystem may lack O_TMPFILE, or /proc may not be mounted.
func anonWorks(dir string) error {
	f, err := createAnon(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	probe := fmt.Sprintf("%s/probe-%d", dir, os.Getpid())
	os.Remove(probe)
	if err := linkAnon(f, probe); err != nil {
		return err
	}
	return os.Remove(probe)
}
