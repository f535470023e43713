package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sealmail/mailstore"
)

// step is one thing the registry does — release a document, receive one,
// file a receipt, recall, return — built first and then committed to the
// store in one transaction (mailstore.CommitDoc): register lines, copies
// delivered, messages queued for other servers, evidence and
// acknowledgements become true together or not at all. Building reads the
// store and signs; it writes nothing.
type step struct {
	mailstore.DocCommit
	done []func() // log lines, once committed
}

// deliver adds a delivery of content to targets, whatever their quota: a
// registered document or a receipt must not bounce.
func (p *step) deliver(content []byte, date time.Time, targets []mailstore.Target) {
	if len(targets) == 0 {
		return
	}
	ts := make([]mailstore.Target, len(targets))
	for i, t := range targets {
		t.IgnoreQuota = true
		ts[i] = t
	}
	p.Deliveries = append(p.Deliveries, mailstore.DocDelivery{Content: content, Date: date, Targets: ts})
}

// pending returns the register line p adds for ref, if any.
func (p *step) pending(ref mailstore.DocRef) *mailstore.DocEntry {
	for i := range p.Entries {
		e := &p.Entries[i].DocEntry
		if e.Domain == ref.Domain && e.Direction == ref.Direction && e.MessageID == ref.MessageID {
			return e
		}
	}
	return nil
}

// fault is where the crash tests kill the process (export_test.go).
var fault = func(point string) {}

// maxNumberRetries bounds how often a step is built again because another
// took its register number meanwhile. Each retry means someone else's step
// committed, and retries are taken one at a time, so this is reached only
// when other processes (a CLI import) take numbers without end.
const maxNumberRetries = 1000

// run builds a step with build and commits it, building it again when a
// register number it took was taken meanwhile. It returns ErrExists
// (mailstore's) when the step was done before.
//
// Steps are built in parallel (verifying and sealing take the time), and
// the one that commits first gets the number. Those that lost build again
// one at a time, so that they compete only with new steps, not with each
// other: every step ends up with a number.
func (r *Registry) run(ctx context.Context, build func(p *step) error) error {
	for attempt := 0; ; attempt++ {
		if attempt == 1 {
			r.retryMu.Lock()
			defer r.retryMu.Unlock()
		}
		p := &step{}
		if err := build(p); err != nil {
			return err
		}
		fault("step:built")
		res, err := r.Store.CommitDoc(ctx, p.DocCommit)
		fault("step:committed")
		if errors.Is(err, mailstore.ErrNumberTaken) && attempt < maxNumberRetries {
			continue
		}
		if err != nil {
			return err
		}
		for i, ds := range res.Deliveries {
			for j, d := range ds {
				if d.Err != nil {
					r.log().Warn("registry: deliver", "account_id", p.Deliveries[i].Targets[j].AccountID,
						"mailbox", p.Deliveries[i].Targets[j].Mailbox, "err", d.Err)
				}
			}
		}
		for _, f := range p.done {
			f()
		}
		if len(p.Queue) > 0 && r.Queue != nil {
			r.Queue.Wake()
		}
		return nil
	}
}

// route sends msg from an agency hosted here to rcpts in step p: queued for
// other servers, and for agencies hosted here filed at once as their
// Incoming would (a receipt), in the same transaction.
func (r *Registry) route(ctx context.Context, from string, rcpts []string, msg []byte, p *step, fileLocal func(g *agency) error) error {
	local, targets, remote, err := r.resolve(ctx, rcpts)
	if err != nil {
		return err
	}
	if len(remote) > 0 {
		p.Queue = append(p.Queue, mailstore.QueuedMessage{From: from, Rcpts: remote, Content: msg})
	}
	if len(local) == 0 {
		return nil
	}
	groups, err := r.byAgency(ctx, local, targets)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := fileLocal(g); err != nil {
			return err
		}
	}
	return nil
}

// resolve splits addresses into those of domains hosted here, with the
// mailboxes they reach, and the others.
func (r *Registry) resolve(ctx context.Context, rcpts []string) (local []string, targets []mailstore.Target, remote []string, err error) {
	seen := map[int64]bool{}
	for _, rcpt := range rcpts {
		_, domain, err := mailstore.SplitAddress(rcpt)
		if err != nil {
			return nil, nil, nil, err
		}
		if ok, err := r.Store.IsLocalDomain(ctx, domain); err != nil {
			return nil, nil, nil, err
		} else if !ok {
			remote = append(remote, rcpt)
			continue
		}
		accts, _, err := r.Store.Resolve(ctx, rcpt)
		if err != nil && !errors.Is(err, mailstore.ErrNotFound) {
			return nil, nil, nil, fmt.Errorf("registry: %s: %w", rcpt, err)
		}
		local = append(local, rcpt)
		for _, a := range accts {
			if !seen[a.ID] && !a.Disabled {
				seen[a.ID] = true
				targets = append(targets, mailstore.Target{AccountID: a.ID})
			}
		}
	}
	return local, targets, remote, nil
}
