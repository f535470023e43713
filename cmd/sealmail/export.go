package main

import (
	"context"
	"fmt"
	"os"

	"sealmail/mailstore"
	"sealmail/migrate"
)

var exportCmd = &command{name: "export", short: "write an account's mail out as a maildir or mbox files", sub: []*command{
	{name: "maildir", short: "write every folder of an account into a new Maildir++ tree", run: exportMaildir},
	{name: "mbox", short: "write one folder into an mbox file, or every folder into a directory of them", run: exportMbox},
}}

// exportNote ends the help of every export command.
const exportNote = "\n\nFlags and keywords are kept as the format keeps them, internal dates too, so that\n" +
	"'sealmail import' of the result gives the mail back as it was. The server may keep running."

func exportMaildir(ctx context.Context, args []string) error {
	f := newFlags("export maildir", "ADDRESS DIR\n\n"+
		"DIR, new or empty, becomes a Maildir++ tree as Dovecot keeps one: INBOX in DIR/cur,\n"+
		"folders in DIR/.Name.Sub (modified UTF-7), flags in the file names, keywords in each\n"+
		"folder's dovecot-keywords (26 at most a folder), internal dates as modification times."+exportNote)
	pos, s, err := f.parseOpen(args, 2, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	return runExport(ctx, s, pos[0], func(a mailstore.Account, opt migrate.Options) (migrate.Summary, error) {
		return migrate.ExportMaildir(ctx, s, a, pos[1], opt)
	})
}

func exportMbox(ctx context.Context, args []string) error {
	f := newFlags("export mbox", "ADDRESS FILE --folder NAME\n       sealmail export mbox ADDRESS DIR\n\n"+
		"With --folder, writes that folder into the new FILE; without, every folder into DIR\n"+
		"(new or empty), the folder \"A/B\" into DIR/A/B.mbox. mboxrd, flags in the Status,\n"+
		"X-Status and X-Keywords headers, internal dates in the From lines."+exportNote)
	folder := f.String("folder", "", "the folder `NAME` to write, such as INBOX")
	pos, s, err := f.parseOpen(args, 2, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	return runExport(ctx, s, pos[0], func(a mailstore.Account, opt migrate.Options) (migrate.Summary, error) {
		return migrate.ExportMbox(ctx, s, a, pos[1], *folder, opt)
	})
}

func runExport(ctx context.Context, s *mailstore.Store, address string, run func(mailstore.Account, migrate.Options) (migrate.Summary, error)) error {
	a, err := s.Account(ctx, address)
	if err != nil {
		return err
	}
	bar := newProgressBar(os.Stderr, a.Address)
	sum, err := run(a, migrate.Options{Progress: bar.update})
	bar.end()
	fmt.Printf("%s: %d folders, %d messages (%s) written, %d errors\n", a.Address, sum.Folders, sum.Messages, humanSize(sum.Bytes), sum.Errors)
	return err
}
