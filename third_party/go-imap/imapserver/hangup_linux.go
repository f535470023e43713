package imapserver

import (
	"syscall"
	"unsafe"
)

// pollFd is struct pollfd; syscall has neither it nor the POLL constants.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// pollErr and pollHup are POLLERR and POLLHUP.
const (
	pollErr   = 0x8
	pollHup   = 0x10
	pollRdHup = 0x2000
)

// hungUp reports whether the peer of the socket has closed its side (or the
// connection failed), without reading anything: POLLRDHUP is set once the FIN
// has arrived, even while unread data is still queued before it.
func hungUp(raw syscall.RawConn) bool {
	gone := false
	raw.Control(func(fd uintptr) {
		p := pollFd{fd: int32(fd), events: pollRdHup}
		var zero syscall.Timespec
		n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1,
			uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
		if errno == 0 && n > 0 {
			gone = p.revents&(pollRdHup|pollHup|pollErr) != 0
		}
	})
	return gone
}
