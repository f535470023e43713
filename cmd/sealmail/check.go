package main

import (
	"context"
	"fmt"

	"sealmail/mailstore"
)

var checkCmd = &command{name: "check", short: "verify the database and every stored message's content", run: check}

func check(ctx context.Context, args []string) error {
	f := newFlags("check", "[--repair]\n\n"+
		"Checks the database's integrity and reference counts, reads every message content the\n"+
		"database refers to and checks it against its SHA-256, and counts stored content that\n"+
		"nothing refers to (orphans, left by a crash). --repair removes the orphans, and nothing\n"+
		"else. Also recomputes every mailbox's counters (message, unseen and deleted counts and\n"+
		"sizes, UID runs) from its messages. Exits 1 if any content is missing or damaged, or\n"+
		"anything else is wrong. The server may keep running.")
	repair := f.Bool("repair", false, "remove orphaned content")
	_, s, err := f.parseOpen(args, 0, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	dbErr := s.Check(ctx)
	countErr := s.CheckCounters(ctx)
	rep, err := s.CheckContent(ctx, *repair)
	if err != nil {
		return err
	}
	for _, sum := range rep.Missing {
		fmt.Printf("missing: %s\n", mailstore.SumHex(sum))
	}
	for _, sum := range rep.Corrupt {
		fmt.Printf("damaged: %s\n", mailstore.SumHex(sum))
	}
	fmt.Printf("contents referenced: %d (%d bytes)\n", rep.Referenced, rep.Bytes)
	fmt.Printf("missing: %d\ndamaged: %d\n", len(rep.Missing), len(rep.Corrupt))
	if *repair {
		fmt.Printf("orphans: %d (removed %d)\n", rep.Orphans, rep.Removed)
	} else {
		fmt.Printf("orphans: %d (remove them with 'sealmail check --repair')\n", rep.Orphans)
	}
	if dbErr != nil {
		fmt.Printf("database: %v\n", dbErr)
	} else {
		fmt.Println("database: ok")
	}
	if countErr != nil {
		fmt.Printf("mailbox counters: %v\n", countErr)
	} else {
		fmt.Println("mailbox counters: ok")
	}
	if bad := len(rep.Missing) + len(rep.Corrupt); bad > 0 || dbErr != nil || countErr != nil {
		return fmt.Errorf("check failed: %d contents missing, %d damaged, database %s, mailbox counters %s; restore from a backup ('sealmail backup')",
			len(rep.Missing), len(rep.Corrupt), okOr(dbErr, "damaged"), okOr(countErr, "wrong"))
	}
	return nil
}

// okOr says "ok" if err is nil, bad otherwise.
func okOr(err error, bad string) string {
	if err != nil {
		return bad
	}
	return "ok"
}
