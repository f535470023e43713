package signingtest

import (
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"sealmail/internal/testtool"
)

// SoftHSMModule is where Debian's softhsm2 installs its PKCS#11 library.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// Token is a SoftHSM2 token in a temporary directory, standing in for the
// USB token or HSM that holds an agency's seal key.
type Token struct {
	Label   string
	PIN     string
	PINFile string // holds PIN, mode 0600
	Conf    string // the SOFTHSM2_CONF file naming the token directory
	util    string
}

// SoftHSM creates an initialised token labelled label and points
// SOFTHSM2_CONF at it for the test and the processes it starts (t.Setenv:
// the test must not be parallel). SoftHSM reads the variable when the
// module is initialised, so the test's cleanup must unload the module
// (signing.CloseTokens) before the next test makes another token.
func SoftHSM(t *testing.T, label string) *Token {
	t.Helper()
	util := testtool.Path(t, "softhsm2-util", "softhsm2")
	if _, err := os.Stat(SoftHSMModule); err != nil {
		t.Fatalf("softhsm2-util is installed but not its module: %v", err)
	}
	dir := t.TempDir()
	tokDir := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokDir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tok := &Token{Label: label, PIN: "246810", PINFile: filepath.Join(dir, "pin"), Conf: conf, util: util}
	if err := os.WriteFile(tok.PINFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok.run(t, "--init-token", "--free", "--label", label, "--pin", tok.PIN, "--so-pin", "13579135")
	return tok
}

func (tok *Token) run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(tok.util, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util %v: %v\n%s", args, err, out)
	}
}

// ImportKey puts key on the token as a private key object (no public key
// object, as many tokens hold) with CKA_LABEL label and CKA_ID id.
func (tok *Token) ImportKey(t *testing.T, key crypto.Signer, label string, id []byte) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	tok.run(t, "--import", f, "--token", tok.Label, "--label", label, "--id", hex.EncodeToString(id), "--pin", tok.PIN, "--no-public-key")
}

// ImportCert stores cert on the token as a certificate object with
// CKA_LABEL label and CKA_ID id, beside the key it certifies.
func (tok *Token) ImportCert(t *testing.T, cert *x509.Certificate, label string, id []byte) {
	t.Helper()
	c, err := crypto11.Configure(&crypto11.Config{Path: SoftHSMModule, TokenLabel: tok.Label, Pin: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.ImportCertificateWithLabel(id, []byte(label), cert); err != nil {
		t.Fatal(err)
	}
}
