package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Seals in hardware: the agency's key stays on a token or HSM (Decree
// 30/2020 Art. 33.2) and signs through PKCS#11; only the certificate is
// kept in the data directory.

// tokens holds the open sessions to tokens, one per module, token and PIN,
// for the life of the process: logging in for every document would cost a
// module initialisation and a login each time.
var tokens = struct {
	sync.Mutex
	m map[string]*crypto11.Context
}{m: map[string]*crypto11.Context{}}

// CloseTokens logs out of every token opened by LoadPKCS11 and unloads the
// modules. Seals loaded before stop working.
func CloseTokens() {
	tokens.Lock()
	defer tokens.Unlock()
	for k, c := range tokens.m {
		c.Close()
		delete(tokens.m, k)
	}
}

// LoadPKCS11 returns the seal whose private key u names, logging in with
// the PIN of u.PINFile. certs are the seal certificate and its chain; when
// empty, the certificate is read from the token (the object with the key's
// id or label). The key is checked against the certificate by signing once.
func LoadPKCS11(u *PKCS11URI, certs []*x509.Certificate) (*Seal, error) {
	s, err := loadPKCS11(u, certs, true)
	if err != nil {
		return nil, fmt.Errorf("signing: PKCS#11 %s: %w", u.describe(), err)
	}
	return s, nil
}

func loadPKCS11(u *PKCS11URI, certs []*x509.Certificate, retry bool) (*Seal, error) {
	if u.Module == "" {
		return nil, errors.New("no module: give the PKCS#11 library's path (--module, or module-path= in the URI)")
	}
	if _, err := os.Stat(u.Module); err != nil {
		return nil, fmt.Errorf("module: %w", err)
	}
	pin, err := u.ReadPIN()
	if err != nil {
		return nil, err
	}
	ctx, key, err := u.openContext(pin)
	if err != nil {
		return nil, err
	}
	priv, err := ctx.FindPrivateKey(u.ID, u.label())
	if err != nil || priv == nil {
		if retry && sessionGone(err) {
			// The token was removed and put back, or the HSM restarted:
			// log in afresh once.
			dropContext(key, ctx)
			return loadPKCS11(u, certs, false)
		}
		if err == nil || strings.Contains(err.Error(), "was not found") {
			return nil, fmt.Errorf("no private key with %s on the token", u.objectDesc())
		}
		return nil, explainP11(err)
	}
	if len(certs) == 0 {
		c, err := ctx.FindCertificate(u.ID, u.label(), nil)
		if err != nil {
			return nil, explainP11(err)
		}
		if c == nil {
			return nil, fmt.Errorf("no certificate with %s on the token; give the seal certificate (--cert FILE.pem)", u.objectDesc())
		}
		certs = []*x509.Certificate{c}
	}
	s := &tokenSigner{key: priv, pub: certs[0].PublicKey}
	if err := checkKeyPair(s); err != nil {
		return nil, err
	}
	return newSeal(certs[0], certs[1:], s)
}

// openContext returns the open session for u's token, logging in if there
// is none yet.
func (u *PKCS11URI) openContext(pin string) (*crypto11.Context, string, error) {
	h := sha256.Sum256([]byte(pin))
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%v\x00%x", u.Module, u.Token, u.Serial, u.Slot, h)
	tokens.Lock()
	defer tokens.Unlock()
	if c, ok := tokens.m[key]; ok {
		return c, key, nil
	}
	cfg := &crypto11.Config{Path: u.Module, Pin: pin}
	switch {
	case u.Serial != "":
		cfg.TokenSerial = u.Serial
	case u.Token != "":
		cfg.TokenLabel = u.Token
	default:
		n := int(*u.Slot)
		cfg.SlotNumber = &n
	}
	c, err := crypto11.Configure(cfg)
	if err != nil {
		return nil, "", explainP11(err)
	}
	tokens.m[key] = c
	return c, key, nil
}

func dropContext(key string, c *crypto11.Context) {
	tokens.Lock()
	defer tokens.Unlock()
	if tokens.m[key] == c {
		delete(tokens.m, key)
		c.Close()
	}
}

func (u *PKCS11URI) label() []byte {
	if u.Object == "" {
		return nil
	}
	return []byte(u.Object)
}

func (u *PKCS11URI) describe() string {
	var tok string
	switch {
	case u.Token != "":
		tok = fmt.Sprintf("token %q", u.Token)
	case u.Serial != "":
		tok = "token serial " + u.Serial
	default:
		tok = fmt.Sprintf("slot %d", *u.Slot)
	}
	return tok + ", " + u.objectDesc()
}

func (u *PKCS11URI) objectDesc() string {
	var parts []string
	if u.Object != "" {
		parts = append(parts, fmt.Sprintf("object %q", u.Object))
	}
	if len(u.ID) > 0 {
		parts = append(parts, fmt.Sprintf("id %x", u.ID))
	}
	return strings.Join(parts, " and ")
}

// explainP11 turns what the module answered into what an admin can act on.
func explainP11(err error) error {
	var rv pkcs11.Error
	if errors.As(err, &rv) {
		switch rv {
		case pkcs11.CKR_PIN_INCORRECT:
			return errors.New("wrong PIN (CKR_PIN_INCORRECT); tokens lock after a few wrong PINs, so check the PIN file before trying again")
		case pkcs11.CKR_PIN_LOCKED:
			return errors.New("the PIN is locked (CKR_PIN_LOCKED); the token's security officer must unlock it")
		case pkcs11.CKR_PIN_EXPIRED:
			return errors.New("the PIN has expired (CKR_PIN_EXPIRED); set a new one with the token's tools")
		case pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_REMOVED:
			return fmt.Errorf("the token is not present (%v)", err)
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return errors.New("no such token in the module (see 'softhsm2-util --show-slots' or the HSM's tools for the tokens it has)")
	case strings.Contains(msg, "failed to open module"):
		return errors.New("the module could not be loaded: is it a PKCS#11 library for this machine?")
	}
	return err
}

// sessionGone reports whether err means the session to the token is lost.
func sessionGone(err error) bool {
	var rv pkcs11.Error
	if !errors.As(err, &rv) {
		return false
	}
	switch rv {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return true
	}
	return false
}

// tokenSigner is a key on a token with the public key of its certificate:
// tokens often hold no public key object, and a seal's public key is the
// certificate's anyway.
type tokenSigner struct {
	key crypto11.PrivateKey
	pub crypto.PublicKey
}

func (s *tokenSigner) Public() crypto.PublicKey { return s.pub }

func (s *tokenSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := s.key.Sign(r, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("PKCS#11: %w", explainP11(err))
	}
	return sig, nil
}

// checkKeyPair signs a random digest and verifies it with the public key:
// a token key that does not match the certificate would otherwise show up
// only as a bad signature at every recipient.
func checkKeyPair(s crypto.Signer) error {
	var d [32]byte
	rand.Read(d[:])
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return err
	}
	ok := false
	switch pub := s.Public().(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, d[:], sig)
	default:
		return fmt.Errorf("unsupported seal key %T: use ECDSA or RSA", pub)
	}
	if !ok {
		return errors.New("the key on the token does not match the seal certificate")
	}
	return nil
}
