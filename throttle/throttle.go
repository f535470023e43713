// Package throttle slows password guessing and caps connections per client, for
// both the SMTP and the IMAP daemons.
package throttle

import (
	"sync"
	"time"
)

// Logins tracks failed logins per key (an IP address, an account). After Free
// failures within Window, each further failure doubles the delay the next attempt
// must wait, up to Max. Failures are forgotten after Window, so a user who mistyped
// is slowed for a while, never locked out for good.
type Logins struct {
	Free   int
	Window time.Duration
	Max    time.Duration

	mu sync.Mutex
	m  map[string]*record
}

type record struct {
	fails int
	last  time.Time
}

// NewLogins returns a limiter with production defaults: 5 free failures, a
// 15-minute memory, at most 30 s of delay.
func NewLogins() *Logins {
	return &Logins{Free: 5, Window: 15 * time.Minute, Max: 30 * time.Second}
}

// Delay returns how long to wait before checking a password for these keys: the
// largest delay any of them has earned.
func (l *Logins) Delay(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		r := l.get(k)
		if r == nil || r.fails < l.Free {
			continue
		}
		kd := time.Second << min(r.fails-l.Free, 30)
		if kd > l.Max {
			kd = l.Max
		}
		d = max(d, kd)
	}
	return d
}

// Fail records a failed login for each key.
func (l *Logins) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]*record)
	}
	if len(l.m) > 100000 {
		l.sweep()
	}
	for _, k := range keys {
		r := l.get(k)
		if r == nil {
			r = &record{}
			l.m[k] = r
		}
		r.fails++
		r.last = time.Now()
	}
}

// Succeed forgets the failures of these keys.
func (l *Logins) Succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.m, k)
	}
}

func (l *Logins) get(k string) *record {
	r := l.m[k]
	if r != nil && time.Since(r.last) > l.Window {
		delete(l.m, k)
		return nil
	}
	return r
}

func (l *Logins) sweep() {
	for k, r := range l.m {
		if time.Since(r.last) > l.Window {
			delete(l.m, k)
		}
	}
}
