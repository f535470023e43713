// Package dovecottest starts a real Dovecot IMAP server for tests: the old
// server a migration copies from.
package dovecottest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"sealmail/internal/testtool"
)

// Server is a Dovecot IMAP server started by a test, on a loopback port with
// TLS only, every user's password Password, mail in maildirs of its directory.
type Server struct {
	Addr   string // 127.0.0.1:PORT of its IMAPS listener
	CAFile string // its certificate (for 127.0.0.1 and localhost), in PEM
	ca     *x509.CertPool
	mail   string // the directory holding every user's maildir
	log    string
}

// Password is every user's password.
const Password = "secret"

// SentName is a folder Dovecot creates for every user and marks \Sent.
const SentName = "Thư đã gửi"

// Start starts Dovecot and stops it at the end of the test. Without Dovecot
// the test is skipped, or fails in CI.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testtool.Path(t, "dovecot", "dovecot-imapd")
	// A short directory: Dovecot's sockets live in it, and socket paths are
	// limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "dv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Dovecot's unprivileged processes must reach their sockets and the mail.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Server{mail: filepath.Join(dir, "mail"), log: filepath.Join(dir, "dovecot.log"), CAFile: filepath.Join(dir, "cert.pem")}
	certPEM, keyPEM := testCert(t)
	d.ca = x509.NewCertPool()
	d.ca.AppendCertsFromPEM(certPEM)
	for name, b := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(d.mail, 0o755); err != nil {
		t.Fatal(err)
	}

	// As root, Dovecot runs its processes as its own users (made by the
	// Debian package) and refuses to keep mail as root; otherwise everything
	// runs as the current user.
	internal, login, mailUser := "dovecot", "dovenull", "dovecot"
	if os.Getuid() != 0 {
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		internal, login, mailUser = me.Username, me.Username, me.Username
	} else {
		u, err := user.Lookup(mailUser)
		if err != nil {
			t.Fatalf("user %s (made by Debian's dovecot-core) missing: %v", mailUser, err)
		}
		var uid, gid int
		fmt.Sscan(u.Uid, &uid)
		fmt.Sscan(u.Gid, &gid)
		if err := os.Chown(d.mail, uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	port := freePort(t)
	d.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
instance_name = dv%[2]d
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = %[3]s
default_internal_group = %[3]s
default_login_user = %[4]s
first_valid_uid = 1
mail_location = maildir:%[1]s/mail/%%u
passdb {
  driver = static
  args = password=%[7]s
}
userdb {
  driver = static
  args = uid=%[5]s gid=%[5]s home=%[1]s/mail/%%u
}
namespace inbox {
  inbox = yes
  separator = .
  mailbox "%[6]s" {
    special_use = \Sent
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = %[2]d
    ssl = yes
  }
  chroot =
}
service anvil {
  chroot =
}
`, dir, port, internal, login, mailUser, SentName, Password)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-F", "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			t.Logf("dovecot log:\n%s", b)
		}
	})
	// Wait until it listens, or has failed to start.
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(d.log)
			t.Fatalf("dovecot exited: %v\n%s", err, b)
		default:
		}
		c, err := net.Dial("tcp", d.Addr)
		if err == nil {
			c.Close()
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the server's imaps:// URL.
func (d *Server) URL() string { return "imaps://" + d.Addr }

// TLS is a client configuration that trusts the server.
func (d *Server) TLS() *tls.Config { return &tls.Config{RootCAs: d.ca} }

// Dial logs in as user.
func (d *Server) Dial(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialTLS(d.Addr, &imapclient.Options{TLSConfig: d.TLS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, Password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testCert returns a self-signed certificate for 127.0.0.1 and localhost, and
// its key, in PEM.
func testCert(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "old mail server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// Maildir returns the maildir Dovecot keeps user's mail in.
func (d *Server) Maildir(user string) string {
	return filepath.Join(d.mail, strings.ToLower(user))
}
