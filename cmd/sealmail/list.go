package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"sealmail/mailstore"
)

// A listCommand prints what the store holds of one kind, such as 'domain
// list': a table for people, or with --json the items as J, whose keys
// scripts rely on.
type listCommand[T, J any] struct {
	name     string // "domain list"
	jsonHelp string // the help of --json
	fetch    func(*mailstore.Store, context.Context) ([]T, error)
	toJSON   func(T) J
	header   string         // the table's column names, separated by tabs
	row      func(T) string // an item's table row, its columns separated by tabs
}

func (l listCommand[T, J]) run(ctx context.Context, args []string) error {
	f := newFlags(l.name, "[--json]")
	asJSON := f.Bool("json", false, l.jsonHelp)
	_, s, err := f.parseOpen(args, 0, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	items, err := l.fetch(s, ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]J, len(items))
		for i, it := range items {
			out[i] = l.toJSON(it)
		}
		return printJSON(out)
	}
	return printTable(l.header, items, l.row)
}

// printTable writes a table to standard output with its columns aligned: the
// header line, then the row of each item.
func printTable[T any](header string, items []T, row func(T) string) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, it := range items {
		fmt.Fprintln(w, row(it))
	}
	return w.Flush()
}
