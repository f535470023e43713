// Package faultpoint lets the crash tests kill a child process at a named
// point of the code under test. Only test files install it (export_test.go),
// so no server binary can be killed by its environment.
package faultpoint

import (
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// FromEnv returns a hook that kills the process with SIGKILL the Nth time it
// reaches the point SEALMAIL_FAULT_POINT (N = SEALMAIL_FAULT_AT), or nil when
// they are not set.
func FromEnv() func(point string) {
	point := os.Getenv("SEALMAIL_FAULT_POINT")
	at, _ := strconv.ParseInt(os.Getenv("SEALMAIL_FAULT_AT"), 10, 64)
	if point == "" || at <= 0 {
		return nil
	}
	var hits atomic.Int64
	return func(p string) {
		if p == point && hits.Add(1) == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
