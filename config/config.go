// Package config reads and writes sealmail.toml, the server's one configuration
// file. Every key has a safe default; unknown keys and bad values are errors that
// name the file, the key and the reason.
package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"

	"sealmail/internal/pemcert"
)

// FileName is the configuration file's name inside the data directory.
const FileName = "sealmail.toml"

// Config is the server's configuration.
type Config struct {
	Hostname string `toml:"hostname"`
	LogLevel string `toml:"log-level"`

	// Listener addresses; an empty one is not started.
	SMTPAddr        string `toml:"smtp-addr"`
	SubmissionAddr  string `toml:"submission-addr"`
	SubmissionsAddr string `toml:"submissions-addr"`
	IMAPAddr        string `toml:"imap-addr"`
	IMAPSAddr       string `toml:"imaps-addr"`
	HTTPSAddr       string `toml:"https-addr"`
	HTTPAddr        string `toml:"http-addr"`
	MetricsAddr     string `toml:"metrics-addr"`

	TLS    TLS    `toml:"tls"`
	Limits Limits `toml:"limits"`
	DNS    string `toml:"dns"` // "system", "off", or HOST:PORT of a resolver
	Relay  Relay  `toml:"relay"`

	Documents Documents `toml:"documents"`

	// Dir is the data directory; relative paths in the file are relative to it.
	Dir string `toml:"-"`
	// Warnings are what Load accepted but the admin should change (old keys).
	Warnings []string `toml:"-"`
}

// TLS names the certificate files.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// Limits bound what clients may do. Connection limits apply to SMTP and IMAP
// each.
type Limits struct {
	MaxMessageSize Size `toml:"max-message-size"`
	MaxRecipients  int  `toml:"max-recipients"`
	// MaxUnauthPerIP caps connections not logged in from one address (an
	// IPv6 client's /64): all of the MX port, IMAP and submission before login.
	MaxUnauthPerIP int `toml:"max-unauthenticated-per-ip"`
	// MaxConnsPerPeerIP replaces MaxUnauthPerIP for peer agencies' relays.
	MaxConnsPerPeerIP int `toml:"max-connections-per-peer-ip"`
	// MaxConnsPerUserIP caps one account's logged-in connections from one address.
	MaxConnsPerUserIP int `toml:"max-connections-per-user-ip"`
	// MaxConnsPerUser caps one account's logged-in connections overall.
	MaxConnsPerUser int `toml:"max-connections-per-user"`
	// MaxConns caps all connections, to protect memory.
	MaxConns int `toml:"max-connections"`
	// MaxConnectionsPerIP is the old name of MaxUnauthPerIP, which Load
	// moves there with a warning.
	MaxConnectionsPerIP int      `toml:"max-connections-per-ip"`
	CommandTimeout      Duration `toml:"command-timeout"`
	MaxInFlight         Size     `toml:"max-in-flight"`
	MinDataRate         Size     `toml:"min-data-rate"`
	IMAPIdleTimeout     Duration `toml:"imap-idle-timeout"`
}

// Relay configures outbound delivery.
type Relay struct {
	GiveUpAfter  Duration `toml:"give-up-after"`
	DelayWarning Duration `toml:"delay-warning"`
	DMARCPolicy  string   `toml:"dmarc-policy"` // "follow", "quarantine", "none"
}

// Documents configures the sealing of official documents.
type Documents struct {
	// TSAURL is an RFC 3161 time-stamping authority's HTTP address; when
	// set, every seal is timestamped and sealing waits for the TSA.
	TSAURL string `toml:"tsa-url"`
	// TSACA is a PEM file of the roots of trusted TSAs: ours and peers'.
	TSACA string `toml:"tsa-ca"`
	// PDFProfile is the signature profile inside PDFs: "adbe.pkcs7.detached"
	// or "pades" (ETSI.CAdES.detached).
	PDFProfile string `toml:"pdf-profile"`
	// RequireSignerSignature refuses a release whose main PDF has no valid
	// signature of the person with authority, and quarantines such arrivals.
	RequireSignerSignature bool `toml:"require-signer-signature"`
	// TrustRoots is a PEM file of the national roots signers' certificates
	// chain to.
	TrustRoots string `toml:"trust-roots"`
	// RequireEdXMLSignature refuses edXML packages and status messages
	// ('doc import') that carry no XML-DSig signature.
	RequireEdXMLSignature bool `toml:"require-edxml-signature"`
}

// Default returns the configuration for a production server of hostname.
func Default(hostname string) Config {
	return Config{
		Hostname:        hostname,
		LogLevel:        "info",
		SMTPAddr:        ":25",
		SubmissionAddr:  ":587",
		SubmissionsAddr: ":465",
		IMAPAddr:        ":143",
		IMAPSAddr:       ":993",
		HTTPSAddr:       ":443",
		HTTPAddr:        ":80",
		MetricsAddr:     "127.0.0.1:9390",
		TLS:             TLS{Cert: "tls/cert.pem", Key: "tls/key.pem"},
		Limits: Limits{
			MaxMessageSize:    50 << 20,
			MaxRecipients:     1000,
			MaxUnauthPerIP:    100,
			MaxConnsPerPeerIP: 500,
			MaxConnsPerUserIP: 20,
			MaxConnsPerUser:   100,
			MaxConns:          10000,
			CommandTimeout:    Duration(5 * time.Minute),
			MaxInFlight:       1 << 30,
			MinDataRate:       1 << 10,
			IMAPIdleTimeout:   Duration(30 * time.Minute),
		},
		DNS: "system",
		Relay: Relay{
			GiveUpAfter:  Duration(5 * 24 * time.Hour),
			DelayWarning: Duration(4 * time.Hour),
			DMARCPolicy:  "follow",
		},
		Documents: Documents{PDFProfile: "adbe.pkcs7.detached", RequireSignerSignature: true},
	}
}

// Load reads dir/sealmail.toml over the defaults and checks it.
func Load(dir string) (*Config, error) {
	path := filepath.Join(dir, FileName)
	c := Default("")
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return nil, fmt.Errorf("%s: line %d: %s: %s", path, pe.Position.Line, pe.LastKey, pe.Message)
			}
			return nil, fmt.Errorf("%s: line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%s: unknown key %q", path, und[0].String())
	}
	c.Dir = dir
	if md.IsDefined("limits", "max-connections-per-ip") {
		// Before connection limits followed logins, this one key counted every
		// connection from an address; it stands for the closest limit now.
		if md.IsDefined("limits", "max-unauthenticated-per-ip") {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: limits.max-connections-per-ip is ignored: limits.max-unauthenticated-per-ip replaces it; remove it", path))
		} else {
			c.Limits.MaxUnauthPerIP = c.Limits.MaxConnectionsPerIP
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: limits.max-connections-per-ip is deprecated: it now caps only connections not logged in; "+
				"rename it to max-unauthenticated-per-ip (default 100) and see max-connections-per-user-ip, max-connections-per-user, max-connections", path))
		}
		if c.Limits.MaxConnectionsPerIP <= 0 {
			return nil, fmt.Errorf("%s: limits.max-connections-per-ip: must be positive", path)
		}
		c.Limits.MaxConnectionsPerIP = 0
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Check validates values, naming the key at fault.
func (c *Config) Check() error {
	if c.Hostname == "" {
		return errors.New("hostname: must be set")
	}
	if _, err := c.Level(); err != nil {
		return err
	}
	for key, addr := range map[string]string{
		"smtp-addr": c.SMTPAddr, "submission-addr": c.SubmissionAddr, "submissions-addr": c.SubmissionsAddr,
		"imap-addr": c.IMAPAddr, "imaps-addr": c.IMAPSAddr, "https-addr": c.HTTPSAddr, "http-addr": c.HTTPAddr,
		"metrics-addr": c.MetricsAddr,
	} {
		if addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return fmt.Errorf("%s: %q is not HOST:PORT", key, addr)
		}
	}
	switch {
	case c.TLS.Cert == "" || c.TLS.Key == "":
		return errors.New("tls: cert and key must be set")
	case c.Limits.MaxMessageSize <= 0:
		return errors.New("limits.max-message-size: must be positive")
	case c.Limits.MaxRecipients <= 0:
		return errors.New("limits.max-recipients: must be positive")
	case c.Limits.MaxUnauthPerIP <= 0:
		return errors.New("limits.max-unauthenticated-per-ip: must be positive")
	case c.Limits.MaxConnsPerPeerIP <= 0:
		return errors.New("limits.max-connections-per-peer-ip: must be positive")
	case c.Limits.MaxConnsPerUserIP <= 0:
		return errors.New("limits.max-connections-per-user-ip: must be positive")
	case c.Limits.MaxConnsPerUser < c.Limits.MaxConnsPerUserIP:
		return errors.New("limits.max-connections-per-user: must be at least max-connections-per-user-ip")
	case c.Limits.MaxConns <= 0:
		return errors.New("limits.max-connections: must be positive")
	case c.Limits.CommandTimeout <= 0:
		return errors.New("limits.command-timeout: must be positive")
	case c.Limits.MinDataRate <= 0:
		return errors.New("limits.min-data-rate: must be positive")
	case c.Limits.MaxInFlight < c.Limits.MaxMessageSize:
		return errors.New("limits.max-in-flight: must be at least limits.max-message-size")
	case c.Limits.IMAPIdleTimeout < Duration(30*time.Minute):
		return errors.New("limits.imap-idle-timeout: RFC 9051 requires at least 30m")
	case c.Relay.GiveUpAfter <= 0:
		return errors.New("relay.give-up-after: must be positive")
	case c.Relay.DelayWarning <= 0:
		return errors.New("relay.delay-warning: must be positive")
	}
	if err := CheckDNS(c.DNS); err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	switch c.Relay.DMARCPolicy {
	case "follow", "quarantine", "none":
	default:
		return fmt.Errorf("relay.dmarc-policy: %q (want follow, quarantine or none)", c.Relay.DMARCPolicy)
	}
	if v := c.Documents.TSAURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("documents.tsa-url: %q is not an http or https URL", v)
		}
		// Tokens from a TSA nobody trusts would be checked by no one,
		// including this server before it sends them.
		if c.Documents.TSACA == "" {
			return errors.New("documents.tsa-ca: must be set when documents.tsa-url is")
		}
	}
	switch c.Documents.PDFProfile {
	case "adbe.pkcs7.detached", "pades":
	default:
		return fmt.Errorf("documents.pdf-profile: %q (want adbe.pkcs7.detached or pades)", c.Documents.PDFProfile)
	}
	return nil
}

// TrustRoots reads the documents.trust-roots file; nil when it is not set.
func (c *Config) TrustRoots() ([]*x509.Certificate, error) {
	if c.Documents.TrustRoots == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.Path(c.Documents.TrustRoots))
	if err != nil {
		return nil, fmt.Errorf("documents.trust-roots: %w", err)
	}
	certs, err := pemcert.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("documents.trust-roots: %s: %w", c.Path(c.Documents.TrustRoots), err)
	}
	return certs, nil
}

// TSARoots reads the documents.tsa-ca file; nil when it is not set.
func (c *Config) TSARoots() (*x509.CertPool, error) {
	if c.Documents.TSACA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(c.Path(c.Documents.TSACA))
	if err != nil {
		return nil, fmt.Errorf("documents.tsa-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("documents.tsa-ca: %s holds no PEM certificate", c.Path(c.Documents.TSACA))
	}
	return pool, nil
}

// CheckDNS validates a dns setting: "system", "off" or HOST:PORT.
func CheckDNS(v string) error {
	if v == "system" || v == "off" {
		return nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q (want system, off or HOST:PORT)", v)
	}
	return nil
}

// Level returns the slog level of log-level.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("log-level: %q (want debug, info, warn or error)", c.LogLevel)
	}
	return l, nil
}

// Path resolves a path from the file relative to the data directory.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// Write writes c as a commented sealmail.toml in dir, fsynced. It refuses to
// overwrite an existing file.
func Write(dir string, c Config) error {
	var buf bytes.Buffer
	if err := fileTmpl.Execute(&buf, c); err != nil {
		return err
	}
	if err := WriteNewFile(filepath.Join(dir, FileName), buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

var fileTmpl = template.Must(template.New("").Parse(`# sealmail configuration. Relative paths are relative to this file's directory.
# After editing, restart 'sealmail serve'. Unknown keys are rejected at start.

# The name this server gives itself in SMTP greetings and Received: headers,
# and the name its TLS certificate must carry.
hostname = "{{.Hostname}}"

# debug, info, warn or error. Logs go to standard error as structured lines.
log-level = "{{.LogLevel}}"

# Listener addresses (HOST:PORT; ":25" means every interface). An empty string
# turns a listener off. 'sealmail serve --smtp-addr ...' etc. override these.
# smtp-addr receives mail from other servers (MX); it never relays elsewhere.
smtp-addr = "{{.SMTPAddr}}"
# Submission for staff mail clients: STARTTLS (587) and implicit TLS (465).
# Authentication is refused until the connection is encrypted.
submission-addr = "{{.SubmissionAddr}}"
submissions-addr = "{{.SubmissionsAddr}}"
# IMAP with STARTTLS (143) and implicit TLS (993).
imap-addr = "{{.IMAPAddr}}"
imaps-addr = "{{.IMAPSAddr}}"
# HTTPS (443): client autoconfiguration (Thunderbird, Outlook, Apple profiles),
# the local CA for staff to install, the MTA-STS policy. HTTP (80) only serves
# Thunderbird's autoconfig and redirects everything else to HTTPS.
https-addr = "{{.HTTPSAddr}}"
http-addr = "{{.HTTPAddr}}"
# Prometheus metrics at http://ADDR/metrics (names in docs/metrics.md). Keep
# it on loopback, or behind a firewall: the numbers say much about the mail.
metrics-addr = "{{.MetricsAddr}}"

# DNS for outbound mail and SPF/DKIM/DMARC checks: "system" (the resolver in
# /etc/resolv.conf), "off" (closed networks: only configured peers are reached,
# checks are recorded as none), or HOST:PORT of a resolver to use.
dns = "{{.DNS}}"

[tls]
# PEM certificate chain and private key of every listener. 'sealmail init'
# makes a local CA (tls/ca.pem, which staff import) and a certificate it issues,
# renewed automatically before it expires. Point these at a pair from a public
# CA to replace both; 'kill -HUP' the server after replacing the files.
cert = "{{.TLS.Cert}}"
key = "{{.TLS.Key}}"

[limits]
# Largest message accepted over SMTP or APPEND, e.g. "50MiB".
max-message-size = "{{.Limits.MaxMessageSize}}"
# Most recipients of one message (all-staff circulars are real).
max-recipients = {{.Limits.MaxRecipients}}
# Simultaneous connections, each for SMTP and for IMAP. A whole office may
# share one NAT address, so an address is limited only while its connections
# have not logged in (all MX connections, IMAP and submission before login;
# an IPv6 client counts per /64); logged-in connections count per account.
max-unauthenticated-per-ip = {{.Limits.MaxUnauthPerIP}}
# Instead of the above for the relays of peer agencies ('peer add --relay'),
# so a burst of official documents is not throttled like spam.
max-connections-per-peer-ip = {{.Limits.MaxConnsPerPeerIP}}
# One account from one address (Thunderbird opens up to 5 IMAP connections,
# every phone one more), and one account from everywhere.
max-connections-per-user-ip = {{.Limits.MaxConnsPerUserIP}}
max-connections-per-user = {{.Limits.MaxConnsPerUser}}
# All connections of the protocol: protects the server's memory.
max-connections = {{.Limits.MaxConns}}
# How long a client may take over one whole SMTP command line (from when the
# server waits for it), and the longest wait for the next bytes of a message.
command-timeout = "{{.Limits.CommandTimeout}}"
# Bytes per second a message must average once command-timeout has passed
# since its DATA (or first BDAT); slower clients get 421 and are disconnected.
min-data-rate = "{{.Limits.MinDataRate}}"
# Total size of the messages being received over SMTP at once, in memory and
# in DATA/spool; past it, new messages get 452/451 (try again later).
max-in-flight = "{{.Limits.MaxInFlight}}"
# How long an IMAP client may stay silent (RFC 9051: at least 30m).
imap-idle-timeout = "{{.Limits.IMAPIdleTimeout}}"

[relay]
# Undeliverable outbound mail is retried with backoff, then bounced.
give-up-after = "{{.Relay.GiveUpAfter}}"
# The sender is told of a delay after this long.
delay-warning = "{{.Relay.DelayWarning}}"
# Inbound DMARC failures: "follow" the sender domain's policy (reject or
# quarantine to Junk), "quarantine" always, or "none" (only record the result).
dmarc-policy = "{{.Relay.DMARCPolicy}}"

[documents]
# RFC 3161 time-stamping authority (TSA) for official documents, e.g.
# "http://tsa.example.gov.vn/tsr". When set, every document and receipt this
# server seals carries a timestamp that proves when it was signed, so it stays
# valid after the seal is revoked or expires; sealing then waits for the TSA
# and, while the TSA is unreachable, clerks' submissions fail temporarily.
# Empty: no timestamps.
tsa-url = "{{.Documents.TSAURL}}"
# PEM file of the root certificates of the TSAs trusted to date documents:
# this server's TSA and its peers'. Required with tsa-url. Received documents
# with a timestamp from these TSAs are judged at that time.
tsa-ca = "{{.Documents.TSACA}}"
# The agency's digital signature inside every PDF of a released document
# (Decree 30/2020, Appendix I): "adbe.pkcs7.detached", as the national CA's
# signing tools write it and Adobe Reader and vSignPDF check it, or "pades"
# (PAdES baseline B-B, B-T when tsa-url is set).
pdf-profile = "{{.Documents.PDFProfile}}"
# Release only documents whose main PDF (the first PDF attached) carries a
# valid signature of the person with authority, and quarantine arrivals
# without one (Decree 30/2020 Art. 14, 32.2.d).
require-signer-signature = {{.Documents.RequireSignerSignature}}
# PEM file of the national roots (e.g. the government CA's) that signers'
# certificates must chain to. Empty: signers' certificates are checked for
# integrity and validity dates but not for their issuer.
trust-roots = "{{.Documents.TrustRoots}}"
# Refuse edXML packages and status messages ('sealmail doc import') without an
# XML-DSig signature of the sending agency's seal. A signature, when present,
# is always checked (chain to the sender's seal CA, validity, revocation) and a
# package that fails is quarantined and answered 02. Off by default: document
# hubs commonly send packages unsigned, and every PDF inside is verified anyway.
require-edxml-signature = {{.Documents.RequireEdXMLSignature}}
`))

// Size is a byte count written as "50MiB", "2GiB", "512KiB" or plain bytes.
type Size int64

var units = []struct {
	suffix string
	mult   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}

// ParseSize parses a size such as "2GiB".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	orig := s
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("size %q: want a number with an optional unit such as MiB or GiB", s)
	}
	// float64(MaxInt64) rounds up to 2^63, which no int64 holds.
	if n*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large: at most 8 EiB", orig)
	}
	return Size(n * float64(mult)), nil
}

func (s Size) String() string {
	for _, u := range units[:4] {
		if s >= Size(u.mult) && int64(s)%u.mult == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.mult, u.suffix)
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	*s = v
	return err
}

// Duration is a time.Duration written as "5m", "4h".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. 30s, 5m or 4h", b)
	}
	*d = Duration(v)
	return nil
}

// Changed returns the keys (as in the file, e.g. "limits.max-recipients") whose
// values differ between a and b.
func Changed(a, b *Config) []string {
	var keys []string
	var walk func(prefix string, x, y reflect.Value)
	walk = func(prefix string, x, y reflect.Value) {
		for i := range x.NumField() {
			tag := x.Type().Field(i).Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			fx, fy := x.Field(i), y.Field(i)
			if fx.Kind() == reflect.Struct {
				walk(prefix+tag+".", fx, fy)
			} else if !fx.Equal(fy) {
				keys = append(keys, prefix+tag)
			}
		}
	}
	walk("", reflect.ValueOf(*a), reflect.ValueOf(*b))
	return keys
}
