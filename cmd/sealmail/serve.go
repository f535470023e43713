package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sealmail/autoconfig"
	"sealmail/certs"
	"sealmail/config"
	"sealmail/imapd"
	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/metrics"
	"sealmail/registry"
	"sealmail/relay"
	"sealmail/resolve"
	"sealmail/signing"
	"sealmail/smtpd"
	"sealmail/throttle"
	"sealmail/tlslog"
	"sealmail/vacation"
	"sealmail/webd"
	"sealmail/webd/clerk"
	"sealmail/webd/portal"
)

// listenerKeys are the configuration keys (and serve flags) of the listeners.
var listenerKeys = []string{"smtp-addr", "submission-addr", "submissions-addr", "imap-addr", "imaps-addr", "https-addr", "http-addr", "metrics-addr"}

var serveCmd = &command{name: "serve", short: "run the SMTP and IMAP servers until SIGINT or SIGTERM", run: serveMain}

// shutdownTimeout bounds how long serve waits for sessions to end on a signal.
const shutdownTimeout = 30 * time.Second

// tsaTimeout bounds a time-stamp request, which a clerk's SMTP client waits for.
const tsaTimeout = 30 * time.Second

func serveMain(ctx context.Context, args []string) error {
	f := newFlags("serve", "[--smtp-addr A] [--submission-addr A] [--submissions-addr A] [--imap-addr A] [--imaps-addr A]\n"+
		"              [--https-addr A] [--http-addr A] [--metrics-addr A]\n"+
		"              [--dns off|system|HOST:PORT] [--data DIR]\n\n"+
		"The flags override the settings of the same name in DIR/sealmail.toml; an empty\n"+
		"address turns that listener off.")
	for _, k := range listenerKeys {
		f.String(k, "", "listen on `HOST:PORT`; overrides "+k+" in sealmail.toml")
	}
	f.String("dns", "", "`MODE`: off, system, or HOST:PORT of a resolver; overrides dns in sealmail.toml")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := needSetup(*f.data); err != nil {
		return err
	}
	c, err := config.Load(*f.data)
	if err != nil {
		return err
	}
	settings := map[string]*string{
		"smtp-addr": &c.SMTPAddr, "submission-addr": &c.SubmissionAddr, "submissions-addr": &c.SubmissionsAddr,
		"imap-addr": &c.IMAPAddr, "imaps-addr": &c.IMAPSAddr, "https-addr": &c.HTTPSAddr, "http-addr": &c.HTTPAddr,
		"metrics-addr": &c.MetricsAddr, "dns": &c.DNS,
	}
	f.Visit(func(fl *flag.Flag) {
		if p := settings[fl.Name]; p != nil {
			*p = fl.Value.String()
		}
	})
	if err := c.Check(); err != nil {
		return fmt.Errorf("command line: %w", err)
	}
	return serve(ctx, c)
}

// serve runs the servers c describes until ctx is done, then shuts them down.
func serve(ctx context.Context, c *config.Config) error {
	level, err := c.Level()
	if err != nil {
		return err
	}
	var logLevel slog.LevelVar
	logLevel.Set(level)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &logLevel}))
	for _, w := range c.Warnings {
		log.Warn("configuration: " + w)
	}
	// The metrics exist before the store, which reports its commits; the
	// queue is read from the store at each scrape.
	m := metrics.New(log.With("component", "metrics"))
	s, err := mailstore.Open(c.Dir, mailstore.Options{Committed: m.StoreCommit, Checkpointed: m.StoreCheckpoint})
	if err != nil {
		return err
	}
	defer s.Close()
	// Log out of seal tokens (PKCS#11) on the way out.
	defer signing.CloseTokens()
	m.WatchQueue(s)
	certMgr := &certs.Manager{CertFile: c.Path(c.TLS.Cert), KeyFile: c.Path(c.TLS.Key),
		CAFile: c.Path(certs.CAFile), CAKeyFile: c.Path(certs.CAKeyFile), Logger: log.With("component", "tls"),
		Names: func() ([]string, error) { return certNames(ctx, s, c.Hostname) }}
	if err := certMgr.Load(); err != nil {
		return fmt.Errorf("%w; check [tls] in %s", err, c.Path(config.FileName))
	}
	tlsConfig := certMgr.TLSConfig()
	res, err := resolve.New(c.DNS, resolve.DefaultTimeout)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	queue := &relay.Queue{
		Store:          s,
		Resolver:       res,
		Hostname:       c.Hostname,
		DKIM:           &mailauth.Signer{Dir: filepath.Join(c.Dir, dkimDir)},
		Logger:         log.With("server", "relay"),
		GiveUpAfter:    time.Duration(c.Relay.GiveUpAfter),
		DelayWarning:   time.Duration(c.Relay.DelayWarning),
		CommandTimeout: time.Duration(c.Limits.CommandTimeout),
	}
	tsaRoots, err := c.TSARoots()
	if err != nil {
		return fmt.Errorf("%w; check [documents] in %s", err, c.Path(config.FileName))
	}
	policy, err := pdfPolicy(c)
	if err != nil {
		return err
	}
	docs := &registry.Registry{Store: s, DataDir: c.Dir, Hostname: c.Hostname, Queue: queue, Logger: log.With("server", "registry"),
		TSARoots: tsaRoots, OCSP: signing.HTTPOCSP{},
		PDF: policy, Counted: m.Document}
	if c.Documents.TSAURL != "" {
		docs.Timestamper = &signing.TSAClient{URL: c.Documents.TSAURL, HTTPClient: &http.Client{Timeout: tsaTimeout}, Roots: tsaRoots}
	}
	tlsFailures := &tlslog.Reporter{Logger: log.With("component", "tls"), Count: m.TLSFailure}
	logins := throttle.NewLogins()
	logins.Counted = m.Login
	logins.Logger = log.With("server", "login")
	conns := throttle.ConnLimits{
		PerAddress:        c.Limits.MaxUnauthPerIP,
		PerAccountAddress: c.Limits.MaxConnsPerUserIP,
		PerAccount:        c.Limits.MaxConnsPerUser,
		Total:             c.Limits.MaxConns,
	}
	imap := &imapd.Server{
		Store:          s,
		TLSConfig:      tlsConfig,
		Logger:         log.With("server", "imap"),
		MaxMessageSize: int64(c.Limits.MaxMessageSize),
		IdleTimeout:    time.Duration(c.Limits.IMAPIdleTimeout),
		ConnLimits:     conns,
		Logins:         logins,
		TLSFailures:    tlsFailures,
		ConnMetrics:    m.Conns("imap"),
		CommandDone:    m.IMAPCommand,
	}
	smtp := &smtpd.Server{
		Store:          s,
		TLSConfig:      tlsConfig,
		Hostname:       c.Hostname,
		Logger:         log.With("server", "smtp"),
		MaxMessageSize: int64(c.Limits.MaxMessageSize),
		MaxRecipients:  c.Limits.MaxRecipients,
		CommandTimeout: time.Duration(c.Limits.CommandTimeout),
		ConnLimits:     conns,
		PeerConnsPerIP: c.Limits.MaxConnsPerPeerIP,
		Resolver:       res,
		MaxInFlight:    int64(c.Limits.MaxInFlight),
		MinDataRate:    int64(c.Limits.MinDataRate),
		SpoolDir:       c.Path("spool"),
		Logins:         logins,
		Queue:          queue,
		Inbound:        &mailauth.Checker{Resolver: res, Hostname: c.Hostname, Policy: c.Relay.DMARCPolicy},
		Registry:       docs,
		Delivered: (&vacation.Responder{Store: s, Queue: queue, Hostname: c.Hostname,
			Logger: log.With("server", "vacation"), Sent: m.VacationReply}).Delivered,
		TLSFailures: tlsFailures,
		ConnMetrics: m.Conns("smtp"),
		Replied:     m.SMTPReply,
	}
	pages := &portal.Server{Store: s, Logins: logins, Logger: log.With("server", "web")}
	(&clerk.Pages{Store: s, Registry: docs, Logger: log.With("server", "web")}).Register(pages)
	web := &webd.Server{Store: s, TLSConfig: tlsConfig, CA: certMgr, Logger: log.With("server", "web"), TLSFailures: tlsFailures,
		Portal: pages.Handler()}
	pages.Handle("GET /setup", http.HandlerFunc(web.Setup))
	mserv := &metrics.Server{Metrics: m}
	type listener struct {
		key, addr string
		serve     func(net.Listener) error
		l         net.Listener
	}
	all := []*listener{
		{key: "smtp-addr", addr: c.SMTPAddr, serve: smtp.ServeMX},
		{key: "submission-addr", addr: c.SubmissionAddr, serve: func(l net.Listener) error { return smtp.ServeSubmission(l, false) }},
		{key: "submissions-addr", addr: c.SubmissionsAddr, serve: func(l net.Listener) error { return smtp.ServeSubmission(l, true) }},
		{key: "imap-addr", addr: c.IMAPAddr, serve: imap.Serve},
		{key: "imaps-addr", addr: c.IMAPSAddr, serve: imap.ServeTLS},
		{key: "https-addr", addr: c.HTTPSAddr, serve: web.ServeHTTPS},
		{key: "http-addr", addr: c.HTTPAddr, serve: func(l net.Listener) error { return web.ServePlain(l, web.Client.HTTPS) }},
		{key: "metrics-addr", addr: c.MetricsAddr, serve: mserv.Serve},
	}
	// Bind everything before serving anything: a port that is taken fails the
	// start as a whole instead of leaving a server with half its listeners.
	var ls []*listener
	for _, x := range all {
		if x.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", x.addr)
		if err != nil {
			for _, y := range ls {
				y.l.Close()
			}
			return fmt.Errorf("%w; free the port, or choose another with --%s or %s in %s", err, x.key, x.key, c.Path(config.FileName))
		}
		x.l = l
		ls = append(ls, x)
	}
	// Clients are told the ports actually bound (the configured ones unless 0).
	bound := map[string]int{}
	for _, x := range ls {
		bound[x.key] = x.l.Addr().(*net.TCPAddr).Port
	}
	web.Client = autoconfig.Server{Host: c.Hostname, IMAPS: bound["imaps-addr"], IMAP: bound["imap-addr"],
		Submissions: bound["submissions-addr"], Submission: bound["submission-addr"], HTTPS: bound["https-addr"]}
	if len(ls) == 0 {
		return fmt.Errorf("every listener is turned off; set smtp-addr, imap-addr etc. in %s", c.Path(config.FileName))
	}
	errc := make(chan error, len(ls))
	for _, x := range ls {
		log.Info("listening", "listener", x.key, "addr", x.l.Addr().String())
		go func() { errc <- fmt.Errorf("%s %s: %w", x.key, x.l.Addr(), x.serve(x.l)) }()
	}
	qctx, stopQueue := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- queue.Run(qctx) }()
	go certMgr.Run(qctx)
	// What the file said at start, without the command line's overrides: a
	// reload reports what changed in the file since.
	onFile, err := config.Load(c.Dir)
	if err != nil {
		onFile = c
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log.Info("sealmail started", "hostname", c.Hostname, "data", c.Dir, "dns", c.DNS)

wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "timeout", shutdownTimeout)
			break wait
		case <-hup:
			onFile = reload(onFile, certMgr, &logLevel, log)
		case err = <-errc:
			log.Error("a listener failed; shutting down", "err", err)
			break wait
		case err = <-queued:
			queued = nil
			err = fmt.Errorf("relay: %w", err)
			log.Error("the outbound queue failed; shutting down", "err", err)
			break wait
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = errors.Join(err, smtp.Shutdown(sctx), imap.Shutdown(sctx), web.Shutdown(sctx), mserv.Shutdown(sctx))
	// The queue stops last: nothing enqueues once SMTP is down.
	stopQueue()
	if queued != nil {
		if qerr := <-queued; qerr != nil && !errors.Is(qerr, context.Canceled) {
			err = errors.Join(err, fmt.Errorf("relay: %w", qerr))
		}
	}
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// pdfPolicy is the [documents] policy for the PDFs of official documents.
func pdfPolicy(c *config.Config) (registry.PDFPolicy, error) {
	roots, err := c.TrustRoots()
	if err != nil {
		return registry.PDFPolicy{}, fmt.Errorf("%w; check [documents] in %s", err, c.Path(config.FileName))
	}
	profile := signing.ProfilePKCS7
	if c.Documents.PDFProfile == "pades" {
		profile = signing.ProfilePAdES
	}
	return registry.PDFPolicy{Profile: profile, AllowUnsigned: !c.Documents.RequireSignerSignature, TrustRoots: roots}, nil
}

// reload answers SIGHUP: the configuration file is read again, its log level
// applies at once, and the TLS certificate is read again from the files it
// names (new handshakes get it, open connections keep theirs); the keys that
// only a restart applies are named in a warning.
func reload(onFile *config.Config, certMgr *certs.Manager, level *slog.LevelVar, log *slog.Logger) *config.Config {
	log.Info("SIGHUP: reloading the configuration and the TLS certificate")
	c, err := config.Load(onFile.Dir)
	if err != nil {
		log.Error("reloading the configuration failed; keeping the running one", "err", err)
		c = onFile
	}
	if l, err := c.Level(); err == nil {
		level.Set(l)
	}
	certMgr.SetFiles(c.Path(c.TLS.Cert), c.Path(c.TLS.Key))
	if err := certMgr.Load(); err != nil {
		log.Error("reloading the TLS certificate failed; still serving the previous one", "err", err)
	}
	var later []string
	for _, k := range config.Changed(onFile, c) {
		if k != "log-level" && k != "tls.cert" && k != "tls.key" {
			later = append(later, k)
		}
	}
	if len(later) > 0 {
		log.Warn("these settings changed in the file and take effect at the next restart", "keys", strings.Join(later, ","))
	}
	log.Info("reloaded", "certificate", certMgr.Subject(), "log-level", c.LogLevel)
	return c
}

// certNames are the names the server's certificate must carry: its host name
// and, for each hosted domain, the names clients and peers look up there.
func certNames(ctx context.Context, s *mailstore.Store, hostname string) ([]string, error) {
	ds, err := s.Domains(ctx)
	if err != nil {
		return nil, err
	}
	ns := []string{hostname}
	for _, d := range ds {
		ns = append(ns, certs.DomainNames(d.Name)...)
	}
	return ns, nil
}
