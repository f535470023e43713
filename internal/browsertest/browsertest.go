// Package browsertest drives a real browser in tests: Debian's headless
// Chromium through the DevTools protocol (github.com/chromedp/chromedp).
package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sealmail/internal/testtool"
)

// New starts a headless Chromium for the test, with a profile of its own,
// and returns the context to run chromedp actions in; the browser stops when
// the test ends. The browser trusts the TLS certificate in certPEM (the
// server's, pinned by its public key) and no other that a test server could
// present; it makes no connection beyond what the test asks for. Each step is
// bounded by a generous timeout, so a hung page fails the test instead of
// hanging it.
func New(t testing.TB, certPEM []byte) context.Context {
	t.Helper()
	exe := testtool.Path(t, "chromium", "chromium")
	spki := pinOf(t, certPEM)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.WindowSize(1200, 900),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.Flag("lang", "vi-VN"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so that a missing library fails here, named.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// pinOf is the base64 SHA-256 of the certificate's public key, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
func pinOf(t testing.TB, certPEM []byte) string {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("browsertest: no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(h[:])
}

// Do runs steps (chromedp.Do) with a timeout of a minute, failing the test
// on an error.
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// Run runs one action (chromedp.Run) with a timeout of a minute and returns
// its value, failing the test on an error.
func Run[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Load runs steps that navigate (a click on a submit button, Navigate) and
// returns the HTTP status of the page they load, after redirects.
func Load(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.Status)
}

// Screenshot saves the whole page as PNG into the directory named by
// $SEALMAIL_SCREENSHOTS (nothing when it is unset), as name.png: how the
// documentation's screenshots are made.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SEALMAIL_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := Run(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
