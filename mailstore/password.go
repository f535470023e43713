package mailstore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// PasswordParams is the argon2id cost.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// OWASP's recommended minimum for argon2id; about 30 ms on this machine class.
var defaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// CheapPasswordParams makes hashing fast; for tests and benchmarks only.
var CheapPasswordParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

// hashing admits as many argon2id computations at once as there are CPUs.
// Each takes 19 MiB and a core's worth of time; a burst of logins (a client
// reconnecting 50 connections, a password guesser) would otherwise balloon
// memory and slow every other login down together instead of queueing.
var hashing = make(chan struct{}, runtime.NumCPU())

func idKey(password string, salt []byte, p PasswordParams, n uint32) []byte {
	if p.Memory >= releaseMin {
		hashStarted()
		defer hashEnded()
	}
	hashing <- struct{}{}
	defer func() { <-hashing }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, n)
}

// Memory goes back to the OS as soon as a burst of argon2id hashes ends. Go
// keeps freed pages for reuse, and its scavenger returns them only down to a
// heap goal that a burst raises to about twice its peak (NumCPU hashes of 19
// MiB each plus everything else live). A server whose clients log in and then
// idle would keep that peak resident: after 1000 IMAP logins, RSS had grown by
// 137 KB per idle connection, and by 34-35 KB with this release. One forced
// collection and scavenge took 15 ms with those connections open, less than
// one hash; it runs at most once per releaseEvery, in its own goroutine so
// that no login waits for it.
const (
	releaseMin   = 1 << 10 // KiB; cheaper hashes leave too little behind to matter
	releaseEvery = time.Second
)

var release struct {
	sync.Mutex
	hashes int       // argon2id computations waiting or running
	last   time.Time // of the last release
	timer  *time.Timer
}

func hashStarted() {
	release.Lock()
	release.hashes++
	release.Unlock()
}

func hashEnded() {
	release.Lock()
	defer release.Unlock()
	release.hashes--
	if release.hashes == 0 && release.timer == nil {
		release.timer = time.AfterFunc(max(time.Until(release.last.Add(releaseEvery)), 0), freeMemory)
	}
}

func freeMemory() {
	release.Lock()
	release.timer = nil
	if release.hashes > 0 { // a new burst began; its end releases
		release.Unlock()
		return
	}
	release.last = time.Now()
	release.Unlock()
	debug.FreeOSMemory()
}

// HashPassword returns the PHC string $argon2id$v=19$m=..,t=..,p=..$salt$hash.
func HashPassword(password string, p PasswordParams) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := idKey(password, salt, p, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC-encoded hash.
func CheckPassword(password, encoded string) bool {
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(f[4])
	want, err2 := enc.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := idKey(password, salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// authCache remembers recent successful logins so that a client reconnecting with
// the same password (Outlook opens many connections) costs an HMAC, not an argon2id
// hash. Entries are keyed by an HMAC of address and password under a per-process
// secret, never the password itself, and are valid only while the stored hash is
// unchanged, so a password change or reset takes effect at once.
type authCache struct {
	once   sync.Once
	secret []byte
	mu     sync.Mutex
	m      map[[32]byte]authEntry
}

type authEntry struct {
	hash    string
	expires time.Time
}

const authCacheTTL = time.Hour

func (c *authCache) key(addr, password string) [32]byte {
	c.once.Do(func() {
		c.secret = make([]byte, 32)
		rand.Read(c.secret)
		c.m = make(map[[32]byte]authEntry)
	})
	h := hmac.New(sha256.New, c.secret)
	h.Write([]byte(addr))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// check reports whether (addr, password) was verified against hash recently.
func (c *authCache) check(k [32]byte, hash string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || e.hash != hash || time.Now().After(e.expires) {
		delete(c.m, k)
		return false
	}
	return true
}

func (c *authCache) add(k [32]byte, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 100000 { // bound memory; a full cache only costs a re-hash
		clear(c.m)
	}
	c.m[k] = authEntry{hash, time.Now().Add(authCacheTTL)}
}
