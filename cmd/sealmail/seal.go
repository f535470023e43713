package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/signing"
)

var sealCmd = &command{name: "seal", short: "manage the agency seals that sign official documents", sub: []*command{
	{name: "init", short: "create a pilot CA and a seal for a domain", run: sealInit},
	{name: "import", short: "install a seal issued by a certificate authority", run: sealImport},
	{name: "export-ca", short: "print the CA certificate peers must trust for a domain's seals", run: sealExportCA},
	{name: "image", short: "install the red seal picture shown on signed PDFs (PNG, transparent background)", run: sealImage},
}}

func sealImage(ctx context.Context, args []string) error {
	f := newFlags("seal image", "DOMAIN FILE.png")
	pos, err := f.parse(args, 2, 2)
	if err != nil {
		return err
	}
	d, err := agencyDomain(ctx, *f.data, pos[0])
	if err != nil {
		return err
	}
	data, err := os.ReadFile(pos[1])
	if err != nil {
		return err
	}
	if err := registry.InstallSealImage(*f.data, d.Name, data); err != nil {
		return fmt.Errorf("%s: %w", pos[1], err)
	}
	fmt.Printf("installed the seal picture of %s; released documents show it over the signer's signature\n", d.Name)
	return nil
}

// agencyDomain returns a domain hosted in the data directory dir, which must
// have the agency details a seal needs.
func agencyDomain(ctx context.Context, dir, name string) (mailstore.Domain, error) {
	s, err := open(dir)
	if err != nil {
		return mailstore.Domain{}, err
	}
	defer s.Close()
	d, err := s.Domain(ctx, name)
	if errors.Is(err, mailstore.ErrNotFound) {
		return d, fmt.Errorf("domain %s is not hosted here; see 'sealmail domain list'", name)
	}
	if err != nil {
		return d, err
	}
	if d.OrganID == "" || d.OrganName == "" || d.Code == "" || d.OfficialAddress == "" {
		return d, fmt.Errorf("domain %s lacks agency details; set them first with "+
			"'sealmail domain update %s --organ-id ID --organ-name NAME --code NOTATION --official-address vanthu@%s'", name, name, name)
	}
	return d, nil
}

func sealInit(ctx context.Context, args []string) error {
	f := newFlags("seal init", "DOMAIN")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	d, err := agencyDomain(ctx, *f.data, pos[0])
	if err != nil {
		return err
	}
	seal, err := registry.InitSeal(*f.data, d, time.Now())
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("domain %s has a seal already; replace it with 'sealmail seal import %s'", d.Name, d.Name)
	}
	if err != nil {
		return err
	}
	dir := registry.SealDir(*f.data, d.Name)
	fmt.Printf("created a pilot CA and a seal for %s (%s) in %s\n"+
		"  seal certifies %s, valid until %s\n"+
		"Give each peer agency the CA certificate:\n"+
		"  sealmail seal export-ca %s > %s-seal-ca.pem\n"+
		"and have it run 'sealmail peer add %s --seal-ca %s-seal-ca.pem' (or 'peer update').\n",
		d.Name, d.OrganName, dir, seal.Cert.EmailAddresses[0], seal.Cert.NotAfter.Format(time.DateOnly),
		d.Name, d.Name, d.Name, d.Name)
	return nil
}

func sealImport(ctx context.Context, args []string) error {
	f := newFlags("seal import", "DOMAIN (--cert FILE.pem --key FILE.pem | --p12 FILE [--password-stdin] | --pkcs11 URI --pin-file FILE [--module LIB.so] [--cert FILE.pem])")
	certFile := f.String("cert", "", "PEM `FILE` of the seal certificate, then its chain")
	keyFile := f.String("key", "", "PEM `FILE` of the seal's private key")
	p12 := f.String("p12", "", "PKCS#12 `FILE` (.p12, .pfx) holding the key, the certificate and its chain")
	pwStdin := f.Bool("password-stdin", false, "read the PKCS#12 password from the first line of standard input")
	p11 := f.String("pkcs11", "", "RFC 7512 `URI` of the seal's key on a token or HSM, e.g. 'pkcs11:token=VanThu;object=seal'")
	pinFile := f.String("pin-file", "", "`FILE` whose first line is the token's user PIN (mode 0600; read at every start)")
	module := f.String("module", "", "the PKCS#11 `LIBRARY` that drives the token, e.g. /usr/lib/softhsm/libsofthsm2.so")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	pem := *keyFile != "" || (*certFile != "" && *p11 == "")
	switch {
	case *p11 != "" && (*keyFile != "" || *p12 != ""):
		return f.errorf("--pkcs11 takes the key from the token: give no --key or --p12")
	case *p11 == "" && (*pinFile != "" || *module != ""):
		return f.errorf("--pin-file and --module go with --pkcs11")
	case pem && *p12 != "":
		return f.errorf("give either --cert and --key, or --p12")
	case pem && (*certFile == "" || *keyFile == ""):
		return f.errorf("--cert and --key go together")
	case !pem && *p12 == "" && *p11 == "":
		return f.errorf("missing --cert and --key, --p12, or --pkcs11")
	case *pwStdin && *p12 == "":
		return f.errorf("--password-stdin goes with --p12")
	}
	var seal *signing.Seal
	var uri *signing.PKCS11URI
	switch {
	case *p11 != "":
		if uri, seal, err = tokenSeal(*p11, *pinFile, *module, *certFile); err != nil {
			return err
		}
		defer signing.CloseTokens()
	case pem:
		seal, err = signing.LoadPEM(*certFile, *keyFile)
	default:
		password := ""
		if *pwStdin {
			if password, err = readPassword(); err != nil {
				return err
			}
		}
		seal, err = signing.LoadPKCS12(*p12, password)
	}
	if err != nil {
		return err
	}
	d, err := agencyDomain(ctx, *f.data, pos[0])
	if err != nil {
		return err
	}
	// Checked here, not at the first document: a seal that cannot sign for
	// the agency would make every document bounce.
	c := seal.Cert
	if !containsFold(c.EmailAddresses, d.OfficialAddress) {
		return fmt.Errorf("the seal certifies %v, not %s's official address %s", c.EmailAddresses, d.Name, d.OfficialAddress)
	}
	if id := c.Subject.SerialNumber; id != "" && id != d.OrganID {
		return fmt.Errorf("the seal belongs to organ %s, not %s (%s)", id, d.OrganID, d.Name)
	}
	if now := time.Now(); now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("the seal is valid from %s to %s, not now", c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly))
	}
	if uri != nil {
		err = registry.InstallTokenSeal(*f.data, d.Name, uri, seal)
	} else {
		err = registry.InstallSeal(*f.data, d.Name, seal)
	}
	if err != nil {
		return err
	}
	fmt.Printf("installed the seal of %s (%s), valid until %s, in %s\n", d.Name, c.Subject.CommonName,
		c.NotAfter.Format(time.DateOnly), registry.SealDir(*f.data, d.Name))
	if uri != nil {
		fmt.Printf("Its key stays on the token and signs there; the server reads the PIN from %s at start.\n", uri.PINFile)
	}
	if len(seal.Chain) == 0 {
		fmt.Printf("The seal came without its CA certificate: give peers your CA's certificate yourself.\n")
	}
	return nil
}

// tokenSeal opens the seal on a token: the URI from --pkcs11, completed with
// --pin-file and --module (made absolute, as the server reads them from
// another directory), the certificate from --cert or else the token.
func tokenSeal(rawURI, pinFile, module, certFile string) (*signing.PKCS11URI, *signing.Seal, error) {
	uri, err := signing.ParsePKCS11URI(rawURI)
	if err != nil {
		return nil, nil, err
	}
	if pinFile != "" {
		uri.PINFile = pinFile
	}
	if module != "" {
		uri.Module = module
	}
	if uri.PINFile == "" {
		return nil, nil, errors.New("missing --pin-file: the token's PIN is read from a file")
	}
	if uri.PINFile, err = filepath.Abs(uri.PINFile); err != nil {
		return nil, nil, err
	}
	if uri.Module == "" {
		return nil, nil, errors.New("missing --module: the path of the token's PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)")
	}
	if uri.Module, err = filepath.Abs(uri.Module); err != nil {
		return nil, nil, err
	}
	if fi, err := os.Stat(uri.PINFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, fmt.Errorf("PIN file %s is readable by others (mode %v); chmod 600 it", uri.PINFile, fi.Mode().Perm())
	}
	var certs []*x509.Certificate
	if certFile != "" {
		b, err := os.ReadFile(certFile)
		if err != nil {
			return nil, nil, err
		}
		if certs, err = signing.ParseCertsPEM(b); err != nil {
			return nil, nil, fmt.Errorf("%w in %s", err, certFile)
		}
	}
	seal, err := signing.LoadPKCS11(uri, certs)
	if err != nil {
		return nil, nil, err
	}
	return uri, seal, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func sealExportCA(ctx context.Context, args []string) error {
	f := newFlags("seal export-ca", "DOMAIN")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if err := needSetup(*f.data); err != nil {
		return err
	}
	b, err := registry.SealCA(*f.data, pos[0])
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("domain %s has no seal CA; create one with 'sealmail seal init %s'", pos[0], pos[0])
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

// sealTrustFlags adds --seal-ca and --seal-crl to a peer command. The
// function it returns, called after parsing, stores what was given for the
// peer domain; it does nothing when neither flag was.
func sealTrustFlags(f *flags) func(ctx context.Context, s *mailstore.Store, domain string) error {
	caFile := f.String("seal-ca", "", "PEM `FILE` of the CA the peer's seals must chain to ('sealmail seal export-ca' on the peer)")
	crlFile := f.String("seal-crl", "", "CRL `FILE` (PEM or DER) for the peer's seals, read at every verification")
	return func(ctx context.Context, s *mailstore.Store, domain string) error {
		if *caFile == "" && *crlFile == "" {
			return nil
		}
		p, err := s.PeerSeal(ctx, domain)
		if err != nil && !errors.Is(err, mailstore.ErrNotFound) {
			return err
		}
		p.Domain = domain
		if *caFile != "" {
			b, err := os.ReadFile(*caFile)
			if err != nil {
				return fmt.Errorf("--seal-ca: %w", err)
			}
			if _, err := signing.ParseCertsPEM(b); err != nil {
				return fmt.Errorf("--seal-ca: %s: %w", *caFile, err)
			}
			// Stored as contents, so the data directory is self-contained.
			p.CA = string(b)
		}
		if p.CA == "" {
			return fmt.Errorf("--seal-crl: %s has no seal CA yet; give --seal-ca too", domain)
		}
		if *crlFile != "" {
			// Stored as a path: a CRL is refreshed by whoever fetches it.
			abs, err := filepath.Abs(*crlFile)
			if err != nil {
				return fmt.Errorf("--seal-crl: %w", err)
			}
			if _, err := registry.ReadCRLs(abs); err != nil {
				return fmt.Errorf("--seal-crl: %w", err)
			}
			p.CRLFile = abs
		}
		return s.SetPeerSeal(ctx, p)
	}
}

func peerUpdate(ctx context.Context, args []string) error {
	f := newFlags("peer update", "DOMAIN [--seal-ca FILE.pem] [--seal-crl FILE]")
	setSeal := sealTrustFlags(f)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	given := false
	f.Visit(func(fl *flag.Flag) { given = given || fl.Name != "data" })
	if !given {
		return f.errorf("nothing to update; give --seal-ca or --seal-crl")
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Peer(ctx, pos[0]); errors.Is(err, mailstore.ErrNotFound) {
		return fmt.Errorf("%s is not a peer; add it with 'sealmail peer add %s'", pos[0], pos[0])
	} else if err != nil {
		return err
	}
	if err := setSeal(ctx, s, pos[0]); err != nil {
		return err
	}
	fmt.Printf("updated peer %s\n", pos[0])
	return nil
}
