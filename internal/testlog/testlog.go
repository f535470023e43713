// Package testlog captures what a server logs, for tests that assert log lines.
package testlog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Capture is an io.Writer that keeps everything written, safe for concurrent use.
type Capture struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

// Logger returns a text logger writing to c, at level and above.
func (c *Capture) Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: level}))
}

// Grep returns the lines that contain every one of parts.
func (c *Capture) Grep(parts ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
next:
	for _, line := range strings.Split(strings.TrimSpace(c.b.String()), "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}
