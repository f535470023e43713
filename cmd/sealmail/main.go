// Command sealmail runs and administers a sealmail server: 'sealmail serve'
// runs SMTP and IMAP over one data directory, and the other subcommands manage
// that directory's domains, accounts and aliases, also while the server runs.
//
// Run 'sealmail --help' for the list of commands and 'sealmail CMD --help' for
// the flags of one.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"sealmail/config"
	"sealmail/mailstore"
)

// A command is a subcommand, or a group of subcommands such as "user".
type command struct {
	name  string
	short string                                         // one line for the command list
	run   func(ctx context.Context, args []string) error // a single command
	sub   []*command                                     // a group
}

// commands are the top-level commands, in the order 'sealmail --help' lists
// them. A new group is one more line here.
var commands = []*command{
	quickstartCmd,
	initCmd,
	serveCmd,
	domainCmd,
	userCmd,
	aliasCmd,
	peerCmd,
	queueCmd,
	dkimCmd,
	dnsCmd,
	sealCmd,
	docCmd,
	backupCmd,
	checkCmd,
	importCmd,
	exportCmd,
}

// errHelp reports that usage was asked for and printed: exit 0.
var errHelp = errors.New("help requested")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, "", commands, os.Args[1:])
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		os.Exit(0)
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "sealmail: %v\n", err)
		ue.usage(os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "sealmail: %v\n", err)
	}
	os.Exit(1)
}

// dispatch finds the command args[0] among cmds and runs it; prefix is the
// path of the group cmds belong to ("" or "user ").
func dispatch(ctx context.Context, prefix string, cmds []*command, args []string) error {
	if len(args) == 0 {
		return usageError{"missing command", func(w io.Writer) { listCommands(w, prefix, cmds) }}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		listCommands(os.Stdout, prefix, cmds)
		return errHelp
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		if c.run != nil {
			return c.run(ctx, args[1:])
		}
		return dispatch(ctx, prefix+c.name+" ", c.sub, args[1:])
	}
	return fmt.Errorf("unknown command %q; run 'sealmail %s--help' for the list", prefix+args[0], prefix)
}

func listCommands(w io.Writer, prefix string, cmds []*command) {
	fmt.Fprintf(w, "usage: sealmail %sCOMMAND [ARGS] [--data DIR]\n\ncommands:\n", prefix)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'sealmail %sCOMMAND --help' for its flags.\n", prefix)
}

// hasSetup reports whether dir holds a sealmail setup.
func hasSetup(dir string) (bool, error) {
	for _, name := range []string{config.FileName, mailstore.DBFile} {
		_, err := os.Stat(filepath.Join(dir, name))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}

// needSetup checks that dir holds a setup, saying how to make one if not.
func needSetup(dir string) error {
	_, err := os.Stat(filepath.Join(dir, config.FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s holds no sealmail setup (no %s); pass --data DIR or set $SEALMAIL_DATA, "+
			"or create one with 'sealmail init --data %s --domain DOMAIN'", dir, config.FileName, dir)
	}
	return err
}

// open opens the store of the data directory dir, which must have been set up:
// opening a mistyped directory would otherwise create an empty store there.
func open(dir string) (*mailstore.Store, error) {
	if err := needSetup(dir); err != nil {
		return nil, err
	}
	return mailstore.Open(dir, mailstore.Options{})
}

// readPassword reads one line from standard input, without its line ending.
func readPassword() (string, error) {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("--password-stdin: reading standard input: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("--password-stdin: the first line of standard input is empty; pipe in the password")
	}
	return pw, nil
}

// passwordAlphabet leaves out characters easily confused when read aloud or
// copied from paper: 0 O o, 1 l I.
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// newPassword returns a random password of 16 characters (about 92 bits).
func newPassword() string {
	const n = 16
	// Rejection sampling keeps every character equally likely.
	limit := byte(256 - 256%len(passwordAlphabet))
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf) // never fails on supported platforms
		for _, b := range buf {
			if b < limit && len(out) < n {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out)
}

// humanSize formats a byte count for people: "0 B", "512 KiB", "1.5 GiB".
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	s := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + string("KMGTPE"[exp]) + "iB"
}

// printJSON writes v as indented JSON to standard output.
func printJSON(v any) error {
	e := json.NewEncoder(os.Stdout)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
