// Package testtool finds the external programs (swaks, mbsync, openssl, ...)
// that tests drive.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns the path of program name, which Debian package pkg provides.
// When it is missing the test is skipped, except in CI (CI=true), where a
// missing tool must fail the run rather than let it pass untested.
func Path(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (Debian package %s): required in CI", name, pkg)
		}
		t.Skipf("%s not installed; apt-get install %s", name, pkg)
	}
	return p
}
