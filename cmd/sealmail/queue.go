package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"sealmail/mailstore"
)

var queueCmd = &command{name: "queue", short: "inspect and manage outbound mail waiting for delivery", sub: []*command{
	{name: "list", short: "list queued messages", run: queueList},
	{name: "show", short: "show a queued message's recipients and content", run: queueShow},
	{name: "retry", short: "retry a queued message (or all) now", run: queueRetry},
	{name: "drop", short: "delete a queued message without bouncing it", run: queueDrop},
}}

// queueJSON is a queued message in 'queue list --json'; scripts rely on its keys.
type queueJSON struct {
	ID      int64      `json:"id"`
	From    string     `json:"from"`
	Created time.Time  `json:"created"`
	Size    int64      `json:"size"`
	Warned  bool       `json:"warned"`
	Rcpts   []rcptJSON `json:"rcpts"`
}

type rcptJSON struct {
	Addr      string    `json:"addr"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	NextTry   time.Time `json:"next_try"`
	LastError string    `json:"last_error"`
}

func toQueueJSON(e mailstore.QueueEntry) queueJSON {
	j := queueJSON{ID: e.ID, From: e.From, Created: e.Created, Size: e.Size, Warned: e.Warned}
	for _, r := range e.Rcpts {
		j.Rcpts = append(j.Rcpts, rcptJSON{r.Addr, r.Status.String(), r.Attempts, r.NextTry, r.LastError})
	}
	return j
}

func queueList(ctx context.Context, args []string) error {
	f := newFlags("queue list", "[--json]")
	asJSON := f.Bool("json", false, "print JSON")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	es, err := s.Queue(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]queueJSON, len(es))
		for i, e := range es {
			out[i] = toQueueJSON(e)
		}
		return printJSON(out)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tQUEUED\tSIZE\tFROM\tPENDING\tNEXT TRY")
	for _, e := range es {
		pending := e.Pending()
		next := "-"
		for _, r := range pending {
			if t := r.NextTry.Format(time.DateTime); next == "-" || t < next {
				next = t
			}
		}
		from := e.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d of %d\t%s\n", e.ID, e.Created.Format(time.DateTime), humanSize(e.Size), from, len(pending), len(e.Rcpts), next)
	}
	return w.Flush()
}

func queueID(f *flags, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, f.errorf("%q is not a queue ID (see 'sealmail queue list')", s)
	}
	return id, nil
}

func notQueued(err error, id int64) error {
	if errors.Is(err, mailstore.ErrNotFound) {
		return fmt.Errorf("no queued message %d; see 'sealmail queue list'", id)
	}
	return err
}

func queueShow(ctx context.Context, args []string) error {
	f := newFlags("queue show", "ID")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	id, err := queueID(f, pos[0])
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	e, err := s.QueueEntry(ctx, id)
	if err != nil {
		return notQueued(err, id)
	}
	from := e.From
	if from == "" {
		from = "<> (a bounce or notice)"
	}
	fmt.Printf("ID:      %d\nFrom:    %s\nQueued:  %s\nSize:    %s\n", e.ID, from, e.Created.Format(time.RFC3339), humanSize(e.Size))
	for _, r := range e.Rcpts {
		fmt.Printf("\nTo:       %s\nStatus:   %s after %d attempts\n", r.Addr, r.Status, r.Attempts)
		if r.Status == mailstore.RcptPending {
			fmt.Printf("Next try: %s\n", r.NextTry.Format(time.RFC3339))
		}
		if r.LastError != "" {
			fmt.Printf("Last:     %s\n", r.LastError)
		}
	}
	msg, err := s.QueueContent(ctx, id)
	if err != nil {
		return notQueued(err, id)
	}
	fmt.Printf("\n%s", msg)
	return nil
}

func queueRetry(ctx context.Context, args []string) error {
	f := newFlags("queue retry", "ID | --all")
	all := f.Bool("all", false, "retry every queued message")
	pos, err := f.parse(args, 0, 1)
	if err != nil {
		return err
	}
	if *all == (len(pos) == 1) {
		return f.errorf("give either an ID or --all")
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if *all {
		if err := s.RetryQueueAll(ctx); err != nil {
			return err
		}
		fmt.Println("every queued message is due now; a running server picks them up within 30s")
		return nil
	}
	id, err := queueID(f, pos[0])
	if err != nil {
		return err
	}
	if err := s.RetryQueue(ctx, id); err != nil {
		return notQueued(err, id)
	}
	fmt.Printf("message %d is due now; a running server picks it up within 30s\n", id)
	return nil
}

func queueDrop(ctx context.Context, args []string) error {
	f := newFlags("queue drop", "ID")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	id, err := queueID(f, pos[0])
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RemoveQueue(ctx, id); err != nil {
		return notQueued(err, id)
	}
	fmt.Printf("dropped message %d; its sender is not notified\n", id)
	return nil
}
