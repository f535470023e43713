package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"sealmail/mailstore"
)

func userVacation(ctx context.Context, args []string) error {
	f := newFlags("user vacation", "ADDRESS [--subject S] [--body-file F] [--from DATE] [--until DATE] | ADDRESS --off | ADDRESS\n\n"+
		"Sets the account's out-of-office reply (RFC 3834: at most one per sender per 7 days, never\n"+
		"to lists or automatic mail), turns it off with --off, or shows it. DATE is YYYY-MM-DD in\n"+
		"the server's time zone (--from: from 00:00 that day; --until: the last day away, to its end) or an\n"+
		"RFC 3339 time such as 2026-12-24T13:30:00+07:00. Without --subject the reply's subject is\n"+
		"\"Auto: \" and the message's; without --body-file the text is a Vietnamese and English\n"+
		"notice naming the last day away.")
	subject := f.String("subject", "", "the reply's `SUBJECT` (sent as \"Auto: SUBJECT\")")
	bodyFile := f.String("body-file", "", "read the reply's text from `FILE` (UTF-8; - is standard input)")
	from := f.String("from", "", "first `DATE` replies are sent (default: now)")
	until := f.String("until", "", "last `DATE` replies are sent (default: until --off)")
	off := f.Bool("off", false, "turn the out-of-office reply off")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	addr := pos[0]
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name != "data" && fl.Name != "off" })
	if *off && set {
		return f.errorf("--off turns the reply off; it takes no other flag")
	}
	var v mailstore.Vacation
	if set {
		v.Subject = *subject
		if *bodyFile != "" {
			if v.Body, err = readBody(*bodyFile); err != nil {
				return err
			}
		}
		if v.From, err = parseDate(*from, false); err != nil {
			return f.errorf("--from: %v", err)
		}
		if v.Until, err = parseDate(*until, true); err != nil {
			return f.errorf("--until: %v", err)
		}
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	switch {
	case *off:
		if err := s.SetVacation(ctx, addr, nil); err != nil {
			return accountErr(addr, err)
		}
		fmt.Printf("the out-of-office reply of %s is off\n", addr)
		return nil
	case !set:
		cur, on, err := s.SavedVacation(ctx, addr)
		if err != nil {
			return accountErr(addr, err)
		}
		if cur == nil {
			fmt.Printf("%s has no out-of-office reply\n", addr)
			return nil
		}
		if on {
			fmt.Printf("out-of-office reply of %s, %s\n", addr, period(cur))
		} else {
			fmt.Printf("the out-of-office reply of %s is off; kept as last set (%s), for the portal to offer again\n", addr, period(cur))
		}
		fmt.Printf("subject: %s\n", orDefault(cur.Subject, `"Auto: " and the subject of the message answered`))
		fmt.Printf("text:\n%s\n", orDefault(cur.Body, "(the default notice in Vietnamese and English)"))
		return nil
	}
	if err := s.SetVacation(ctx, addr, &v); err != nil {
		if errors.Is(err, mailstore.ErrInvalid) {
			return fmt.Errorf("out-of-office reply of %s refused: %w", addr, err)
		}
		return accountErr(addr, err)
	}
	fmt.Printf("set the out-of-office reply of %s, %s\n", addr, period(&v))
	if !v.Until.IsZero() && !v.Until.After(time.Now()) {
		fmt.Fprintf(os.Stderr, "warning: --until %s has passed: no reply will be sent\n", *until)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readBody reads a reply's text from file (- : standard input), without a
// byte order mark, which editors on Windows write.
func readBody(file string) (string, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, mailstore.MaxVacationBody+4))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("--body-file: %w", err)
	}
	return string(bytes.TrimPrefix(b, []byte("\ufeff"))), nil
}

// parseDate reads a --from or --until DATE: a day (the server's time zone) starts at
// 00:00 for --from; for --until the reply stops when the next day begins.
func parseDate(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: write it as YYYY-MM-DD (the server's time zone) or an RFC 3339 time", s)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// period says when a reply is sent, in the server's time zone.
func period(v *mailstore.Vacation) string {
	const layout = "2006-01-02 15:04 (UTC-07:00)"
	var b strings.Builder
	if v.From.IsZero() {
		b.WriteString("from now")
	} else {
		b.WriteString("from " + v.From.Local().Format(layout))
	}
	if v.Until.IsZero() {
		b.WriteString(" until turned off")
	} else {
		b.WriteString(" until " + v.Until.Local().Format(layout) + " (not included)")
	}
	return b.String()
}
