package disk

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

func lockShared(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_SH) }

func tryLockExclusive(f *os.File) bool {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

func unlock(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// punch gives n bytes at off back to the filesystem; where it cannot, they
// are overwritten with zeros, which still deletes the record.
func punch(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		_, err = f.WriteAt(make([]byte, n), off)
	}
	return err
}

func syncData(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// nextData returns the first offset from off that is not in a hole.
func nextData(f *os.File, off int64) (int64, error) {
	d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return 0, io.EOF
	}
	if err != nil {
		return off, nil // no SEEK_DATA here: read through
	}
	return d, nil
}
