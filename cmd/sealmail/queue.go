package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"sealmail/mailstore"
)

var queueCmd = &command{name: "queue", short: "inspect and manage outbound mail waiting for delivery", sub: []*command{
	{name: "list", short: "list queued messages", run: queueList.run},
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

var queueList = listCommand[mailstore.QueueEntry, queueJSON]{
	name:     "queue list",
	jsonHelp: "print JSON",
	fetch:    (*mailstore.Store).Queue,
	toJSON:   toQueueJSON,
	header:   "ID\tQUEUED\tSIZE\tFROM\tPENDING\tNEXT TRY",
	row: func(e mailstore.QueueEntry) string {
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
		return fmt.Sprintf("%d\t%s\t%s\t%s\t%d of %d\t%s", e.ID, e.Created.Format(time.DateTime), humanSize(e.Size), from, len(pending), len(e.Rcpts), next)
	},
}

func queueID(f *flags, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, f.errorf("%q is not a queue ID (see 'sealmail queue list')", s)
	}
	return id, nil
}

// parseQueued parses the arguments of a command on one queued message, its ID,
// and opens the store. The caller closes it.
func parseQueued(f *flags, args []string) (int64, *mailstore.Store, error) {
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return 0, nil, err
	}
	// The ID is checked first: a mistyped one is a usage error wherever --data points.
	id, err := queueID(f, pos[0])
	if err != nil {
		return 0, nil, err
	}
	s, err := open(*f.data)
	return id, s, err
}

func notQueued(err error, id int64) error {
	if errors.Is(err, mailstore.ErrNotFound) {
		return fmt.Errorf("no queued message %d; see 'sealmail queue list'", id)
	}
	return err
}

func queueShow(ctx context.Context, args []string) error {
	f := newFlags("queue show", "ID")
	id, s, err := parseQueued(f, args)
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
	id, s, err := parseQueued(f, args)
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
