package mailstore

// #include <malloc.h>
import "C"

// SQLite allocates through the C library on whichever thread runs it, and
// glibc's per-thread arenas hand freed memory back to the kernel as soon as
// 128 KiB lie free at their top: under mail arriving without pause, about
// one madvise a message, each a TLB flush on every core (3.4% of the
// server's CPU in a profile of 4 KiB SMTP ingest). Keeping up to 32 MiB
// per arena costs little beside SQLite's own caches.
func init() {
	C.mallopt(C.M_TRIM_THRESHOLD, 32<<20)
}
