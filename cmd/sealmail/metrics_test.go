package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"sealmail/internal/testwait"
	"sealmail/mailstore/storetest"
)

// TestMetrics scrapes a running server after some traffic and checks the
// names and the counts the traffic made.
func TestMetrics(t *testing.T) {
	data := agencyData(t)
	ok(t, "pw\n", "user", "add", "a@agency.example", "--password-stdin", "--data", data)
	ok(t, "clerk-pw\n", "user", "passwd", "clerk@agency.example", "--password-stdin", "--data", data)
	// a is away: the message checkMX sends is answered, and the reply waits
	// in the queue: its sender's domain is a peer whose relay is down (with
	// DNS off, mail for any other domain would bounce at once).
	ok(t, "", "user", "vacation", "a@agency.example", "--subject", "Nghỉ phép", "--data", data)
	ok(t, "", "peer", "add", "other.example", "--relay", closedPort(t), "--data", data)
	srv := startServe(t, data)
	defer srv.stop(t)

	// IMAP: a good login with a few commands, a wrong password.
	checkIMAP(t, srv, data, "a@agency.example", "pw")
	c, err := imapclient.DialTLS(srv.addrs["imaps-addr"], &imapclient.Options{TLSConfig: clientTLS(t, data)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("a@agency.example", "wrong").Wait(); err == nil {
		t.Error("wrong password accepted")
	}
	c.Close()
	// SMTP: one message in, one unknown recipient refused.
	checkMX(t, srv, data)
	sc, err := smtp.Dial(srv.addrs["smtp-addr"])
	if err != nil {
		t.Fatal(err)
	}
	err = sc.SendMail("x@other.example", []string{"nobody@agency.example"}, bytes.NewReader(storetest.Msg("x@other.example", "nobody@agency.example", "s", "b")))
	if err == nil {
		t.Error("mail to an unknown recipient accepted")
	}
	sc.Close()
	// The clerk releases an official document: numbered and sealed.
	sc, err = smtp.DialTLS(srv.addrs["submissions-addr"], clientTLS(t, data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Auth(sasl.NewPlainClient("", "clerk@agency.example", "clerk-pw")); err != nil {
		t.Fatal(err)
	}
	if err := sc.SendMail("vanthu@agency.example", []string{"nam@agency.example"}, bytes.NewReader(documentMessage(t, 1, "nam@agency.example"))); err != nil {
		t.Fatalf("releasing a document: %v", err)
	}
	sc.Close()
	// TLS: a client that does not trust the server.
	if _, err := tls.Dial("tcp", srv.addrs["imaps-addr"], &tls.Config{ServerName: host, RootCAs: x509.NewCertPool()}); err == nil {
		t.Error("an untrusting client connected")
	}
	srv.waitLog(t, "reason=untrusted-certificate")

	var body []byte
	// The checkpointer's first tick comes 500 ms after the start.
	testwait.For(t, "a scrape with a checkpoint counted", func() bool {
		resp, err := http.Get("http://" + srv.addrs["metrics-addr"] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("scrape: %s\n%s", resp.Status, body)
		}
		return bytes.Contains(body, []byte(`sealmail_store_checkpoints_total{mode="passive"}`))
	})
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape is not Prometheus text format: %v", err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Errorf("no metric %s", name)
			return -1
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if label(m, labels[i]) != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Errorf("no %s%v in:\n%s", name, labels, body)
		return -1
	}
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"sealmail_connections_total", []string{"protocol", "imap"}, 2},
		{"sealmail_connections_total", []string{"protocol", "smtp"}, 2},
		// Gauges: present; the test's connections have closed.
		{"sealmail_connections_open", []string{"protocol", "imap"}, 0},
		{"sealmail_sessions_open", []string{"protocol", "imap"}, 0},
		{"sealmail_sessions_open", []string{"protocol", "smtp"}, 0},
		{"sealmail_logins_total", []string{"outcome", "success"}, 1},
		{"sealmail_logins_total", []string{"outcome", "failure"}, 1},
		{"sealmail_smtp_messages_accepted_total", []string{"listener", "mx"}, 1},
		{"sealmail_smtp_rejections_total", []string{"listener", "mx", "command", "RCPT"}, 1},
		{"sealmail_store_commit_seconds", nil, 1},
		{"sealmail_store_checkpoints_total", []string{"mode", "passive"}, 1},
		{"sealmail_store_wal_frames", nil, 0},
		{"sealmail_imap_command_seconds", []string{"command", "LOGIN"}, 2},
		{"sealmail_imap_command_seconds", []string{"command", "SELECT"}, 1},
		{"sealmail_tls_handshake_failures_total", []string{"protocol", "imap", "reason", "untrusted-certificate"}, 1},
		{"sealmail_documents_total", []string{"action", "stamped", "result", "ok"}, 1},
		// The out-of-office reply waits in the queue (DNS is off).
		{"sealmail_queue_messages", nil, 1},
		{"sealmail_queue_oldest_age_seconds", nil, 0},
		{"process_resident_memory_bytes", nil, 1},
	} {
		if v := value(c.name, c.labels...); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if v := value("sealmail_smtp_messages_accepted_total", "listener", "mx"); v != 1 {
		t.Errorf("messages accepted: %v, want 1", v)
	}
	if v := value("sealmail_documents_total", "action", "stamped", "result", "ok"); v != 1 {
		t.Errorf("documents stamped: %v, want 1", v)
	}
	if v := value("sealmail_vacation_replies_total"); v != 1 {
		t.Errorf("out-of-office replies: %v, want 1", v)
	}
	if !strings.Contains(string(body), "# HELP sealmail_smtp_rejections_total") {
		t.Error("no HELP text")
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
