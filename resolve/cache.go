package resolve

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"
)

// Cache wraps a Resolver: each lookup runs at most timeout, concurrent lookups
// of one name share one query, and answers are remembered (failures briefly, so
// a dead server costs one timeout per name per FailTTL, not one per message).
type Cache struct {
	r       Resolver
	timeout time.Duration

	// TTL is how long answers and "no such name" are kept; FailTTL how long
	// other failures are.
	TTL     time.Duration
	FailTTL time.Duration

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
}

// DefaultTimeout bounds one lookup when New or NewCache is given zero.
const DefaultTimeout = 3 * time.Second

// NewCache returns r behind a cache whose lookups each take at most timeout.
func NewCache(r Resolver, timeout time.Duration) *Cache {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Cache{r: r, timeout: timeout, TTL: 5 * time.Minute, FailTTL: 30 * time.Second, entries: map[cacheKey]*cacheEntry{}}
}

type cacheKey struct {
	kind byte
	name string
}

type cacheEntry struct {
	done    chan struct{} // closed when val and err are set
	val     any
	err     error
	expires time.Time
}

// maxEntries bounds the cache; past it expired entries are swept.
const maxEntries = 10000

func (c *Cache) lookup(ctx context.Context, kind byte, name string, fn func(ctx context.Context, name string) (any, error)) (any, error) {
	key := cacheKey{kind, strings.ToLower(strings.TrimSuffix(name, "."))}
	c.mu.Lock()
	e := c.entries[key]
	if e != nil {
		select {
		case <-e.done:
			if time.Now().After(e.expires) {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		if len(c.entries) >= maxEntries {
			c.sweep()
		}
		e = &cacheEntry{done: make(chan struct{})}
		c.entries[key] = e
		// The query belongs to every caller waiting on it, so one caller
		// giving up must not cancel it for the others.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		go func() {
			defer cancel()
			val, err := fn(qctx, key.name)
			ttl := c.TTL
			if err != nil && !IsNotFound(err) {
				ttl = c.FailTTL
			}
			c.mu.Lock()
			e.val, e.err, e.expires = val, err, time.Now().Add(ttl)
			c.mu.Unlock()
			close(e.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return e.val, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sweep drops expired entries; c.mu is held.
func (c *Cache) sweep() {
	now := time.Now()
	for k, e := range c.entries {
		select {
		case <-e.done:
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		default:
		}
	}
}

func (c *Cache) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	v, err := c.lookup(ctx, 'm', name, func(ctx context.Context, n string) (any, error) { return c.r.LookupMX(ctx, n) })
	mx, _ := v.([]*net.MX)
	return mx, err
}

func (c *Cache) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	v, err := c.lookup(ctx, 'a', host, func(ctx context.Context, n string) (any, error) { return c.r.LookupIP(ctx, n) })
	ips, _ := v.([]net.IP)
	return ips, err
}

func (c *Cache) LookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := c.lookup(ctx, 't', name, func(ctx context.Context, n string) (any, error) { return c.r.LookupTXT(ctx, n) })
	txt, _ := v.([]string)
	return txt, err
}

// Static answers from fixed records: tests use it so that no lookup ever leaves
// the machine. Names are compared case-insensitively, without a trailing dot; a
// name absent from a map has no such records.
type Static struct {
	MX  map[string][]*net.MX
	IP  map[string][]net.IP
	TXT map[string][]string
}

func staticGet[T any](m map[string][]T, name string) ([]T, error) {
	v, ok := m[strings.ToLower(strings.TrimSuffix(name, "."))]
	if !ok {
		return nil, NotFound(name)
	}
	return v, nil
}

func (s *Static) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return staticGet(s.MX, name)
}

func (s *Static) LookupIP(_ context.Context, host string) ([]net.IP, error) {
	return staticGet(s.IP, host)
}

func (s *Static) LookupTXT(_ context.Context, name string) ([]string, error) {
	return staticGet(s.TXT, name)
}
