package resolve

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

type counting struct {
	n    atomic.Int32
	hang bool
}

func (c *counting) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	c.n.Add(1)
	if c.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if name == "none.test" {
		return nil, NotFound(name)
	}
	return []*net.MX{{Host: "mx." + name, Pref: 1}}, nil
}
func (c *counting) LookupIP(context.Context, string) ([]net.IP, error)  { return nil, nil }
func (c *counting) LookupTXT(context.Context, string) ([]string, error) { return nil, nil }

func TestCache(t *testing.T) {
	ctx := context.Background()
	r := &counting{}
	c := NewCache(r, time.Second)
	for range 3 {
		if mx, err := c.LookupMX(ctx, "a.test"); err != nil || mx[0].Host != "mx.a.test" {
			t.Fatal(mx, err)
		}
		if _, err := c.LookupMX(ctx, "NONE.test."); !IsNotFound(err) {
			t.Fatal(err)
		}
	}
	if n := r.n.Load(); n != 2 {
		t.Errorf("%d queries for 2 names", n)
	}
	// A dead server costs one timeout, then the failure is remembered.
	dead := NewCache(&counting{hang: true}, 50*time.Millisecond)
	start := time.Now()
	for range 3 {
		if _, err := dead.LookupMX(ctx, "a.test"); err == nil || IsNotFound(err) {
			t.Fatalf("dead server: %v", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("three lookups against a dead server took %v", d)
	}
}
