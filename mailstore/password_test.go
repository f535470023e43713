package mailstore_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"sealmail/mailstore"
)

// A burst of costly hashes must not leave its memory resident once it ends.
func TestPasswordMemoryReleased(t *testing.T) {
	p := mailstore.PasswordParams{Memory: 16 << 10, Time: 1, Threads: 1}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := mailstore.HashPassword("pw", p); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var ms runtime.MemStats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		runtime.ReadMemStats(&ms)
		kept := ms.HeapIdle - ms.HeapReleased
		if kept < 8<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d MiB of freed heap still resident 10 s after the hashes", kept>>20)
		}
	}
}
