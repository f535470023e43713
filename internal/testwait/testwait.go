// Package testwait waits in tests for a condition that another goroutine or
// process brings about.
package testwait

import (
	"testing"
	"time"
)

// For polls cond until it holds. It has no deadline: on a shared, loaded
// machine any would be a guess that fails good code, and a wait that never
// ends is ended by go test's -timeout, whose goroutine dump names it. Every
// 30 s of waiting is logged, naming what.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	start, said := time.Now(), time.Now()
	for !cond() {
		if time.Since(said) >= 30*time.Second {
			t.Logf("still waiting for %s after %v", what, time.Since(start).Round(time.Second))
			said = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
}
