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
	"path/filepath"
	"time"

	"sealmail/config"
	"sealmail/imapd"
	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/relay"
	"sealmail/resolve"
	"sealmail/signing"
	"sealmail/smtpd"
	"sealmail/throttle"
)

var serveCmd = &command{name: "serve", short: "run the SMTP and IMAP servers until SIGINT or SIGTERM", run: serveMain}

// shutdownTimeout bounds how long serve waits for sessions to end on a signal.
const shutdownTimeout = 30 * time.Second

// tsaTimeout bounds a time-stamp request, which a clerk's SMTP client waits for.
const tsaTimeout = 30 * time.Second

func serveMain(ctx context.Context, args []string) error {
	f := newFlags("serve", "[--smtp-addr A] [--submission-addr A] [--submissions-addr A] [--imap-addr A] [--imaps-addr A]\n"+
		"              [--dns off|system|HOST:PORT] [--data DIR]\n\n"+
		"The flags override the settings of the same name in DIR/sealmail.toml; an empty\n"+
		"address turns that listener off.")
	for _, k := range []string{"smtp-addr", "submission-addr", "submissions-addr", "imap-addr", "imaps-addr"} {
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
		"imap-addr": &c.IMAPAddr, "imaps-addr": &c.IMAPSAddr, "dns": &c.DNS,
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range c.Warnings {
		log.Warn("configuration: " + w)
	}
	tlsConfig, err := c.TLSConfig()
	if err != nil {
		return fmt.Errorf("%w; check [tls] in %s", err, c.Path(config.FileName))
	}
	s, err := mailstore.Open(c.Dir, mailstore.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	// Log out of seal tokens (PKCS#11) on the way out.
	defer signing.CloseTokens()
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
		PDF: policy}
	if c.Documents.TSAURL != "" {
		docs.Timestamper = &signing.TSAClient{URL: c.Documents.TSAURL, HTTPClient: &http.Client{Timeout: tsaTimeout}, Roots: tsaRoots}
	}
	logins := throttle.NewLogins()
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
	}
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
	log.Info("sealmail started", "hostname", c.Hostname, "data", c.Dir, "dns", c.DNS)

	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", shutdownTimeout)
	case err = <-errc:
		log.Error("a listener failed; shutting down", "err", err)
	case err = <-queued:
		queued = nil
		err = fmt.Errorf("relay: %w", err)
		log.Error("the outbound queue failed; shutting down", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = errors.Join(err, smtp.Shutdown(sctx), imap.Shutdown(sctx))
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
