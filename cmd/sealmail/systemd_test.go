package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sealmail/internal/testtool"
)

// TestSystemdUnit checks deploy/sealmail.service with systemd's own tools:
// it parses ('systemd-analyze verify', the binary put where ExecStart says),
// keeps the hardening the README promises, and systemd rates its exposure
// at most 3.0 ("OK") out of 10.
func TestSystemdUnit(t *testing.T) {
	analyze := testtool.Path(t, "systemd-analyze", "systemd")
	unit := string(readAll(t, "../../deploy/sealmail.service"))
	for _, want := range []string{
		"User=sealmail", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/sealmail",
		"ExecStart=/usr/local/bin/sealmail serve --data /var/lib/sealmail", "ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sealmail.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/sealmail", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=30", path).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security: exposure above 3.0: %v\n%s", err, out)
	}
	// The command line the unit runs is one sealmail takes.
	if out, err := exec.Command(bin, "serve", "--data", "/var/lib/sealmail", "--help").CombinedOutput(); err != nil {
		t.Errorf("sealmail serve --help: %v\n%s", err, out)
	}
}
