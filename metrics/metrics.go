// Package metrics exposes sealmail's Prometheus metrics. The packages that do
// the work know nothing of Prometheus: each offers a small hook (a function
// or interface field) and this package fills it with counters; values that
// live in the store (the queue) are read when Prometheus scrapes. The metric
// names are listed in docs/metrics.md.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every metric of one server process.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	connections *prometheus.CounterVec
	open        *prometheus.GaugeVec
	refused     *prometheus.CounterVec
	sessions    *prometheus.GaugeVec
	logins      *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	commit      prometheus.Histogram
	commitOps   prometheus.Histogram
	walFrames   prometheus.Gauge
	walUncopied prometheus.Gauge
	checkpoints *prometheus.CounterVec
	imapCommand *prometheus.HistogramVec
	documents   *prometheus.CounterVec
	tlsFailures *prometheus.CounterVec
	vacation    prometheus.Counter
}

// Queue is what the metrics read of the outbound queue at each scrape
// (mailstore.Store implements it).
type Queue interface {
	QueueStats(ctx context.Context) (messages int, oldest time.Time, err error)
}

// New registers every metric, the Go runtime's and the process's included.
func New(log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: log}
	m.connections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_connections_total",
		Help: "Connections accepted, by protocol (smtp, imap)."}, []string{"protocol"})
	m.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sealmail_connections_open",
		Help: "Connections open now, by protocol."}, []string{"protocol"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_connections_refused_total",
		Help: "Connections or logins refused by a connection limit, by protocol and limit (the configuration key)."}, []string{"protocol", "limit"})
	m.sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sealmail_sessions_open",
		Help: "Logged-in sessions open now, by protocol."}, []string{"protocol"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_logins_total",
		Help: "Password checks by outcome: success, failure (wrong password: an authentication failure), throttled (refused unchecked)."}, []string{"outcome"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_smtp_messages_accepted_total",
		Help: "Messages accepted over SMTP (DATA or BDAT answered 2xx), by listener (mx, submission)."}, []string{"listener"})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_smtp_rejections_total",
		Help: "SMTP commands refused (4xx and 5xx replies), by listener, command and reason (the reply and enhanced code, e.g. \"550 5.1.1\")."},
		[]string{"listener", "command", "reason"})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sealmail_store_commit_seconds",
		Help:    "Duration of the store's group commits (SQL and fsync; content is synced before, beside the previous commit).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m.commitOps = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sealmail_store_commit_operations",
		Help:    "Operations carried by each group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	m.walFrames = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sealmail_store_wal_frames",
		Help: "Pages (4 KiB) in the store's write-ahead log at the last checkpoint."})
	m.walUncopied = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sealmail_store_wal_uncopied_frames",
		Help: "Pages of the write-ahead log that the last checkpoint could not copy into the database (a reader still needed them)."})
	m.checkpoints = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_store_checkpoints_total",
		Help: "Checkpoints of the store's write-ahead log, by mode: passive (beside the writer), restart (completed; holds the writer back)."}, []string{"mode"})
	m.imapCommand = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sealmail_imap_command_seconds",
		Help:    "Duration of IMAP commands, response included, by command.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"command"})
	m.documents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_documents_total",
		Help: "Official documents stamped here (action stamped: ok, refused) and verified on arrival (action verified: pass, fail)."}, []string{"action", "result"})
	m.tlsFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sealmail_tls_handshake_failures_total",
		Help: "Failed TLS handshakes, by protocol and reason (untrusted-certificate, not-tls, hangup...)."}, []string{"protocol", "reason"})
	m.vacation = prometheus.NewCounter(prometheus.CounterOpts{Name: "sealmail_vacation_replies_total",
		Help: "Out-of-office replies sent (queued or delivered locally)."})
	m.reg.MustRegister(m.connections, m.open, m.refused, m.sessions, m.logins, m.deliveries, m.rejections,
		m.commit, m.commitOps, m.walFrames, m.walUncopied, m.checkpoints, m.imapCommand, m.documents, m.tlsFailures, m.vacation,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchQueue adds the outbound queue's depth and age, read from q at each scrape.
func (m *Metrics) WatchQueue(q Queue) {
	m.reg.MustRegister(&queueCollector{queue: q, log: m.log})
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Conns returns the hook of one protocol's connection limits (throttle.ConnMetrics).
func (m *Metrics) Conns(protocol string) *Conns {
	return &Conns{
		total: m.connections.WithLabelValues(protocol), open: m.open.WithLabelValues(protocol),
		sessions: m.sessions.WithLabelValues(protocol), refused: m.refused.MustCurryWith(prometheus.Labels{"protocol": protocol}),
	}
}

// Conns counts one protocol's connections and sessions.
type Conns struct {
	total    prometheus.Counter
	open     prometheus.Gauge
	sessions prometheus.Gauge
	refused  *prometheus.CounterVec
}

func (c *Conns) Opened()              { c.total.Inc(); c.open.Inc() }
func (c *Conns) Closed()              { c.open.Dec() }
func (c *Conns) LoggedIn()            { c.sessions.Inc() }
func (c *Conns) LoggedOut()           { c.sessions.Dec() }
func (c *Conns) Refused(limit string) { c.refused.WithLabelValues(limit).Inc() }

// Login counts a password check's outcome (throttle.Logins.Counted).
func (m *Metrics) Login(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

// SMTPReply counts deliveries and refusals from SMTP replies (smtpd.Server.Replied).
func (m *Metrics) SMTPReply(listener, command string, code int, enhanced string) {
	switch {
	case code >= 200 && code < 300 && (command == "DATA" || command == "BDAT"):
		// BDAT answers 250 to every chunk; only the LAST one ends a message,
		// and go-smtp answers it like the others, so BDAT counts chunks.
		m.deliveries.WithLabelValues(listener).Inc()
	case code >= 400:
		if !knownSMTP[command] {
			command = "other"
		}
		reason := strconv.Itoa(code)
		if enhanced != "" {
			reason += " " + enhanced
		}
		m.rejections.WithLabelValues(listener, command, reason).Inc()
	}
}

// StoreCommit observes a group commit (mailstore.Options.Committed).
func (m *Metrics) StoreCommit(d time.Duration, ops int) {
	m.commit.Observe(d.Seconds())
	m.commitOps.Observe(float64(ops))
}

// StoreCheckpoint observes a periodic checkpoint (mailstore.Options.Checkpointed).
func (m *Metrics) StoreCheckpoint(frames, uncopied int, restart bool) {
	m.walFrames.Set(float64(frames))
	m.walUncopied.Set(float64(uncopied))
	m.checkpoints.WithLabelValues("passive").Inc()
	if restart {
		m.checkpoints.WithLabelValues("restart").Inc()
	}
}

// IMAPCommand observes an IMAP command (imapd.Server.CommandDone). Names a
// client makes up are counted as "other", so that they cannot grow the
// metric without bound.
func (m *Metrics) IMAPCommand(name string, d time.Duration) {
	if !knownIMAP[name] {
		name = "other"
	}
	m.imapCommand.WithLabelValues(name).Observe(d.Seconds())
}

// Document counts a document stamped or verified (registry.Registry.Counted).
func (m *Metrics) Document(action, result string) { m.documents.WithLabelValues(action, result).Inc() }

// TLSFailure counts a failed handshake (tlslog.Reporter.Count).
func (m *Metrics) TLSFailure(protocol, reason string) {
	m.tlsFailures.WithLabelValues(protocol, reason).Inc()
}

// VacationReply counts an out-of-office reply sent (vacation.Responder.Sent).
func (m *Metrics) VacationReply() { m.vacation.Inc() }

var knownSMTP = map[string]bool{"": true, "HELO": true, "EHLO": true, "LHLO": true, "MAIL": true, "RCPT": true, "DATA": true,
	"BDAT": true, "RSET": true, "NOOP": true, "QUIT": true, "VRFY": true, "EXPN": true, "HELP": true, "AUTH": true, "STARTTLS": true}

var knownIMAP = map[string]bool{}

func init() {
	for _, c := range []string{"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE", "LOGIN", "ENABLE", "SELECT",
		"EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "NAMESPACE", "STATUS", "APPEND",
		"IDLE", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "ID", "GETQUOTA",
		"GETQUOTAROOT", "SETQUOTA", "SORT", "THREAD", "UNAUTHENTICATE"} {
		knownIMAP[c] = true
	}
	for _, c := range []string{"EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "SORT", "THREAD"} {
		knownIMAP["UID "+c] = true
	}
}

// queueCollector reads the queue's depth and age at each scrape.
type queueCollector struct {
	queue Queue
	log   *slog.Logger
}

var (
	queueMessages = prometheus.NewDesc("sealmail_queue_messages", "Messages in the outbound queue.", nil, nil)
	queueOldest   = prometheus.NewDesc("sealmail_queue_oldest_age_seconds", "Age of the oldest message in the outbound queue (0 when empty).", nil, nil)
)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueMessages
	ch <- queueOldest
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, oldest, err := q.queue.QueueStats(ctx)
	if err != nil {
		q.log.Warn("metrics: reading the queue", "err", err)
		ch <- prometheus.NewInvalidMetric(queueMessages, err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(queueMessages, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(queueOldest, prometheus.GaugeValue, age)
}

// Server serves /metrics on its own listener (metrics-addr, loopback by
// default: the numbers say much about the agency's mail).
type Server struct {
	Metrics *Metrics
	hs      *http.Server
	mu      sync.Mutex
}

// Serve serves l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.Metrics.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	s.mu.Lock()
	s.hs = hs
	s.mu.Unlock()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	hs := s.hs
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	return hs.Shutdown(ctx)
}
