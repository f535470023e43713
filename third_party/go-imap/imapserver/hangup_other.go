//go:build !linux

package imapserver

import "syscall"

// hungUp is only implemented on Linux; elsewhere a command whose client left
// still stops at Server.Close.
func hungUp(raw syscall.RawConn) bool { return false }
