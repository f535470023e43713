package registry

import (
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// A child process of the crash tests kills itself with SIGKILL the Nth time it
// reaches the fault point SEALMAIL_FAULT_POINT (N = SEALMAIL_FAULT_AT).
func init() {
	point := os.Getenv("SEALMAIL_FAULT_POINT")
	at, _ := strconv.ParseInt(os.Getenv("SEALMAIL_FAULT_AT"), 10, 64)
	if point == "" || at <= 0 {
		return
	}
	var hits atomic.Int64
	fault = func(p string) {
		if p == point && hits.Add(1) == at {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
