// Package relay delivers outbound mail: a queue kept in the mail store, workers
// that route each recipient (configured peer, else DNS MX), send one SMTP
// transaction per destination with STARTTLS, retry with backoff, warn senders
// of delays and return bounces (RFC 3464) to their INBOX.
//
// Queued messages survive a crash: they are committed before Enqueue returns,
// and a recipient is marked sent only after the next hop said 250 to the data.
// A crash in between (milliseconds) makes the recipients of that one
// transaction be sent once more on restart: at most one duplicate per
// recipient per crash, never a loss.
package relay

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"sealmail/mailauth"
	"sealmail/mailstore"
	"sealmail/resolve"
)

// Retry schedule: the first retry after MinBackoff, doubling up to MaxBackoff.
const (
	MinBackoff = 5 * time.Minute
	MaxBackoff = 4 * time.Hour
)

// Queue is the outbound queue and its delivery workers. Set the fields, then
// call Run; Enqueue may be called before or while Run runs.
type Queue struct {
	Store *mailstore.Store
	// Resolver answers MX and address lookups; nil means DNS is off and only
	// peers are reached.
	Resolver resolve.Resolver
	// Hostname is this server's name, said in EHLO and in bounces.
	Hostname string
	// DKIM signs outgoing mail; nil sends it unsigned.
	DKIM *mailauth.Signer
	// RootCAs verifies peers configured without their own CA; nil means the
	// system roots.
	RootCAs *x509.CertPool
	Logger  *slog.Logger

	GiveUpAfter  time.Duration // default 5 days
	DelayWarning time.Duration // default 4 hours
	Workers      int           // parallel deliveries, default 8
	// Port is where MX hosts are reached, "25" unless set (tests point it at
	// their server).
	Port string
	// DialTimeout and CommandTimeout bound connecting and each SMTP command
	// (defaults 30s and 5m).
	DialTimeout    time.Duration
	CommandTimeout time.Duration

	once   sync.Once
	wake   chan struct{}
	mu     sync.Mutex
	active map[int64]bool      // entries a worker holds
	held   map[int64]time.Time // entries whose processing failed, not retried before then
}

func (q *Queue) init() {
	q.once.Do(func() {
		q.wake = make(chan struct{}, 1)
		q.active = map[int64]bool{}
		q.held = map[int64]time.Time{}
	})
}

func (q *Queue) logger() *slog.Logger {
	if q.Logger == nil {
		return slog.Default()
	}
	return q.Logger
}

func (q *Queue) giveUpAfter() time.Duration  { return orDefault(q.GiveUpAfter, 5*24*time.Hour) }
func (q *Queue) delayWarning() time.Duration { return orDefault(q.DelayWarning, 4*time.Hour) }
func (q *Queue) dialTimeout() time.Duration  { return orDefault(q.DialTimeout, 30*time.Second) }
func (q *Queue) commandTimeout() time.Duration {
	return orDefault(q.CommandTimeout, 5*time.Minute)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Enqueue queues msg for rcpts; it returns once the message is durable, and
// wakes a worker at once. It satisfies smtpd.Queue.
func (q *Queue) Enqueue(ctx context.Context, from string, rcpts []string, msg []byte) error {
	q.init()
	id, err := q.Store.Enqueue(ctx, from, rcpts, msg)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	q.logger().Debug("relay: queued", "id", id, "from", from, "rcpts", len(rcpts), "size", len(msg))
	q.Wake()
	return nil
}

// Wake makes the workers look at the queue now, e.g. after RetryQueue.
func (q *Queue) Wake() {
	q.init()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pollInterval is how often the queue is looked at without being woken, so
// that 'sealmail queue retry' from another process is noticed.
const pollInterval = 30 * time.Second

// heldFor is how long an entry whose processing failed is left alone.
const heldFor = time.Minute

// Run delivers queued mail until ctx is cancelled, then waits for the
// deliveries under way to stop.
func (q *Queue) Run(ctx context.Context) error {
	q.init()
	workers := q.Workers
	if workers <= 0 {
		workers = 8
	}
	jobs := make(chan mailstore.QueueEntry)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				err := q.process(ctx, e)
				if err != nil && ctx.Err() == nil {
					q.logger().Error("relay: processing queue entry", "id", e.ID, "err", err)
				}
				q.mu.Lock()
				delete(q.active, e.ID)
				if err != nil {
					// A store error would otherwise make the entry due again at
					// once: hold it back instead of spinning.
					q.held[e.ID] = time.Now().Add(heldFor)
				}
				q.mu.Unlock()
				q.Wake()
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		q.dispatch(ctx, jobs, workers)
		wait := pollInterval
		if next, ok, err := q.Store.QueueNextTry(ctx); err == nil && ok {
			wait = min(wait, max(time.Until(next), time.Second))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// dispatch hands every due entry not already being worked on to the workers.
func (q *Queue) dispatch(ctx context.Context, jobs chan<- mailstore.QueueEntry, workers int) {
	now := time.Now()
	q.mu.Lock()
	n := len(q.active)
	q.mu.Unlock()
	due, err := q.Store.QueueDue(ctx, now, now.Add(-q.delayWarning()), n+2*workers)
	if err != nil {
		if ctx.Err() == nil {
			q.logger().Error("relay: reading queue", "err", err)
		}
		return
	}
	for _, e := range due {
		q.mu.Lock()
		busy := q.active[e.ID]
		if t, ok := q.held[e.ID]; ok {
			if now.Before(t) {
				busy = true
			} else {
				delete(q.held, e.ID)
			}
		}
		if !busy {
			q.active[e.ID] = true
		}
		q.mu.Unlock()
		if busy {
			continue
		}
		select {
		case jobs <- e:
		case <-ctx.Done():
			return
		}
	}
}

// backoff is the wait before retry number n (1 for the first retry).
func backoff(n int) time.Duration {
	d := MinBackoff
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// process makes one delivery attempt for the due recipients of e, then sends
// what notices are owed and removes the entry when it is done.
func (q *Queue) process(ctx context.Context, e mailstore.QueueEntry) error {
	log := q.logger().With("id", e.ID)
	now := time.Now()
	deadline := e.Created.Add(q.giveUpAfter())
	var due []mailstore.QueueRcpt
	for _, r := range e.Rcpts {
		if r.Status == mailstore.RcptPending && !r.NextTry.After(now) {
			due = append(due, r)
		}
	}
	if len(due) > 0 {
		m, err := q.outboundOf(ctx, e.ID)
		if err != nil {
			return err
		}
		if q.DKIM != nil {
			if err := q.sign(ctx, m, log); err != nil {
				return err
			}
		}
		results, err := q.attempt(ctx, e.From, due, m)
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: this attempt does not count
		}
		if err != nil {
			return err // the content could not be read: no recipient was tried
		}
		ups := make([]mailstore.RcptUpdate, 0, len(due))
		for _, r := range due {
			res := results[r.Addr]
			u := mailstore.RcptUpdate{Addr: r.Addr, Error: res.msg}
			switch {
			case res.sent:
				u.Status = mailstore.RcptSent
				log.Info("relay: sent", "rcpt", r.Addr, "result", res.msg)
			case res.perm:
				u.Status = mailstore.RcptFailed
				log.Warn("relay: failed", "rcpt", r.Addr, "err", res.msg)
			case !now.Before(deadline):
				u.Status = mailstore.RcptFailed
				u.Error = fmt.Sprintf("gave up after %s: %s", q.giveUpAfter(), res.msg)
				log.Warn("relay: gave up", "rcpt", r.Addr, "err", res.msg)
			default:
				u.Status = mailstore.RcptPending
				// The last retry falls on the deadline, so giving up is on time.
				u.NextTry = now.Add(backoff(r.Attempts + 1))
				if u.NextTry.After(deadline) {
					u.NextTry = deadline
				}
				log.Info("relay: deferred", "rcpt", r.Addr, "err", res.msg, "retry", u.NextTry.Format(time.RFC3339))
			}
			ups = append(ups, u)
		}
		if err := q.Store.UpdateQueue(ctx, e.ID, ups); err != nil {
			return err
		}
		if e, err = q.Store.QueueEntry(ctx, e.ID); err != nil {
			return err
		}
	}
	pending := e.Pending()
	if len(pending) > 0 {
		if !e.Warned && e.From != "" && !now.Before(e.Created.Add(q.delayWarning())) {
			return q.warn(ctx, e, pending, deadline)
		}
		return nil
	}
	return q.finish(ctx, e)
}

// attempt routes the recipients and runs one transaction per destination. An
// error means the content could not be read, and the results are not to be
// recorded.
func (q *Queue) attempt(ctx context.Context, from string, rcpts []mailstore.QueueRcpt, m *outbound) (map[string]result, error) {
	out := make(map[string]result, len(rcpts))
	type group struct {
		r     *route
		rcpts []string
	}
	var groups []*group
	byKey := map[string]*group{}
	routes := map[string]*route{}
	for _, r := range rcpts {
		_, domain, err := mailstore.SplitAddress(strings.ToLower(r.Addr))
		if err != nil {
			out[r.Addr] = result{perm: true, msg: "invalid address: " + err.Error()}
			continue
		}
		rt, ok := routes[domain]
		if !ok {
			rt, err = q.route(ctx, domain)
			if err != nil {
				var re *routeError
				out[r.Addr] = result{perm: errors.As(err, &re) && re.perm, msg: err.Error()}
				continue
			}
			routes[domain] = rt
		}
		g := byKey[rt.key()]
		if g == nil {
			g = &group{r: rt}
			byKey[rt.key()] = g
			groups = append(groups, g)
		}
		g.rcpts = append(g.rcpts, r.Addr)
	}
	for _, g := range groups {
		res, err := q.transaction(ctx, g.r, from, g.rcpts, m)
		if err != nil {
			return nil, err
		}
		for addr, res := range res {
			out[addr] = res
		}
	}
	return out, nil
}

// warn tells the sender the message is delayed, once.
func (q *Queue) warn(ctx context.Context, e mailstore.QueueEntry, pending []mailstore.QueueRcpt, until time.Time) error {
	m, err := q.outboundOf(ctx, e.ID)
	if err != nil {
		return err
	}
	d := &dsn{kind: dsnDelayed, hostname: q.Hostname, sender: e.From, arrival: e.Created, until: until, header: m.header}
	for _, r := range pending {
		d.rcpts = append(d.rcpts, dsnRcpt{r.Addr, r.LastError})
	}
	if err := q.notify(ctx, e.From, d.build()); err != nil {
		return fmt.Errorf("delay warning to %s: %w", e.From, err)
	}
	q.logger().Info("relay: delay warning sent", "id", e.ID, "to", e.From)
	return q.Store.SetQueueWarned(ctx, e.ID)
}

// finish bounces the failed recipients of a finished entry, unless its sender
// is null (a bounce is never bounced), and removes it. A crash between the
// two sends the bounce again: a duplicate notice, never a lost one.
func (q *Queue) finish(ctx context.Context, e mailstore.QueueEntry) error {
	var failed []dsnRcpt
	for _, r := range e.Rcpts {
		if r.Status == mailstore.RcptFailed {
			failed = append(failed, dsnRcpt{r.Addr, r.LastError})
		}
	}
	if len(failed) > 0 && e.From != "" {
		m, err := q.outboundOf(ctx, e.ID)
		if err != nil {
			return err
		}
		d := &dsn{kind: dsnFailed, hostname: q.Hostname, sender: e.From, arrival: e.Created, rcpts: failed, header: m.header}
		if err := q.notify(ctx, e.From, d.build()); err != nil {
			return fmt.Errorf("bounce to %s: %w", e.From, err)
		}
		q.logger().Info("relay: bounced", "id", e.ID, "to", e.From, "rcpts", len(failed))
	}
	return q.Store.RemoveQueue(ctx, e.ID)
}

// notify delivers a notice to the sender: into the INBOX of a local sender
// (whatever their quota), or queued from the null sender to a remote one.
func (q *Queue) notify(ctx context.Context, sender string, msg []byte) error {
	_, domain, err := mailstore.SplitAddress(strings.ToLower(sender))
	if err != nil {
		return err
	}
	local, err := q.Store.IsLocalDomain(ctx, domain)
	if err != nil {
		return err
	}
	if !local {
		_, err := q.Store.Enqueue(ctx, "", []string{sender}, msg)
		q.Wake()
		return err
	}
	accts, remote, err := q.Store.Resolve(ctx, sender)
	if errors.Is(err, mailstore.ErrNotFound) {
		q.logger().Warn("relay: notice for an unknown local sender dropped", "sender", sender)
		return nil
	}
	if err != nil {
		return err
	}
	var targets []mailstore.Target
	for _, a := range accts {
		targets = append(targets, mailstore.Target{AccountID: a.ID, IgnoreQuota: true})
	}
	if len(targets) == 0 && len(remote) == 0 {
		return nil
	}
	// A list's local and remote members get the notice in one transaction:
	// a failure between the two would duplicate the local copies at the retry.
	a, err := q.Store.Accept(ctx, mailstore.Delivery{Content: mailstore.Bytes(msg), Date: time.Now(), Targets: targets, Remote: remote})
	if err != nil {
		return err
	}
	for _, d := range a.Delivered {
		if d.Err != nil {
			q.logger().Warn("relay: notice not delivered", "sender", sender, "err", d.Err)
		}
	}
	if a.QueueID != 0 {
		q.Wake()
	}
	return nil
}
