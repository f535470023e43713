package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"slices"
	"testing"
)

func TestNewLocalCA(t *testing.T) {
	ca, key, err := NewLocalCA(agencyA.OrganName, agencyA.OrganID, testNow)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key %T", key.Public())
	}
	if !ca.IsCA || ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA %v KeyUsage %v MaxPathLen %d", ca.IsCA, ca.KeyUsage, ca.MaxPathLen)
	}
	if ca.Subject.SerialNumber != agencyA.OrganID || ca.Subject.Organization[0] != agencyA.OrganName {
		t.Errorf("CA subject %s", ca.Subject)
	}
	if ca.SignatureAlgorithm != x509.ECDSAWithSHA256 || ca.CheckSignatureFrom(ca) != nil {
		t.Errorf("CA signature %v", ca.SignatureAlgorithm)
	}
}

func TestIssueSeal(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	c := a.seal.Cert
	if c.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment {
		t.Errorf("KeyUsage %v", c.KeyUsage)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}) {
		t.Errorf("ExtKeyUsage %v", c.ExtKeyUsage)
	}
	if !slices.Equal(c.EmailAddresses, []string{agencyA.OfficialAddress}) {
		t.Errorf("EmailAddresses %v", c.EmailAddresses)
	}
	if c.Subject.SerialNumber != agencyA.OrganID || c.Subject.CommonName != agencyA.OrganName || c.Subject.Organization[0] != agencyA.OrganName {
		t.Errorf("subject %s", c.Subject)
	}
	if c.IsCA || c.SerialNumber.BitLen() < 64 {
		t.Errorf("IsCA %v, serial %x", c.IsCA, c.SerialNumber)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("seal key %T", c.PublicKey)
	}
	pool := x509.NewCertPool()
	pool.AddCert(a.ca)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		t.Error(err)
	}
	if got := c.NotAfter.Sub(testNow); got != sealLifetime {
		t.Errorf("seal valid for %v", got)
	}
}

func TestIssueSealRejects(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	outside := agencyA
	outside.OfficialAddress = "vanthu@gmail.com"
	noID := agencyA
	noID.OrganID = ""
	for name, ag := range map[string]Agency{"address outside the domain": outside, "no OrganID": noID} {
		if _, err := IssueSeal(a.ca, a.caKey, ag, testNow); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
}
