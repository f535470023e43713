package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"sealmail/mailstore"
)

// flags is a subcommand's flag set with the flags every command takes.
type flags struct {
	*flag.FlagSet
	name  string // "user add"
	usage string // what follows the name in the synopsis
	data  *string
}

// newFlags starts the flag set of the command name, whose synopsis after the
// name is usage. Every command takes --data.
func newFlags(name, usage string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors and help are printed by parse, to the right stream.
	fs.SetOutput(io.Discard)
	f := &flags{FlagSet: fs, name: name, usage: usage}
	f.data = fs.String("data", defaultData(), "the data directory `DIR` (default $SEALMAIL_DATA, else ./sealmail-data)")
	return f
}

func defaultData() string {
	if d := os.Getenv("SEALMAIL_DATA"); d != "" {
		return d
	}
	return "sealmail-data"
}

// parse parses args, in which flags may stand before, between or after the
// positional arguments, and returns the positional ones. The standard flag
// package stops at the first positional argument, so parse takes it aside and
// goes on with the rest. After "--" everything is positional.
//
// It checks that the number of positional arguments lies in [min, max] (max < 0:
// no limit). On --help it returns errHelp after printing the usage to stdout.
func (f *flags) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if err == flag.ErrHelp {
			f.printUsage(os.Stdout)
			return nil, errHelp
		}
		if err != nil {
			return nil, f.errorf("%v", err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, f.errorf("missing arguments")
	case max >= 0 && len(pos) > max:
		return nil, f.errorf("unexpected argument %q", pos[max])
	}
	return pos, nil
}

// parseOpen parses args like parse, then opens the store of --data for a
// command that needs nothing else first. The caller closes the store.
func (f *flags) parseOpen(args []string, min, max int) ([]string, *mailstore.Store, error) {
	pos, err := f.parse(args, min, max)
	if err != nil {
		return nil, nil, err
	}
	s, err := open(*f.data)
	if err != nil {
		return nil, nil, err
	}
	return pos, s, nil
}

func (f *flags) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: sealmail %s %s\n", f.name, f.usage)
	var b strings.Builder
	f.VisitAll(func(fl *flag.Flag) {
		name, help := flag.UnquoteUsage(fl)
		fmt.Fprintf(&b, "  --%s", fl.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n    \t%s\n", help)
	})
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nflags:\n%s", b.String())
	}
}

// usageError is a mistake in the command line; main prints the usage after it.
type usageError struct {
	msg   string
	usage func(io.Writer)
}

func (e usageError) Error() string { return e.msg }

// errorf returns a usage error of this command.
func (f *flags) errorf(format string, args ...any) error {
	return usageError{f.name + ": " + fmt.Sprintf(format, args...), f.printUsage}
}
