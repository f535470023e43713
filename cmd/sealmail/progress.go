package main

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"sealmail/migrate"
)

// progressBar draws a long run's progress on one line of a terminal; on
// anything else (a log file, a pipe) it draws nothing.
type progressBar struct {
	out   *os.File
	label string
	last  time.Time
	drawn bool
}

func newProgressBar(out *os.File, label string) *progressBar {
	st, err := out.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &progressBar{}
	}
	return &progressBar{out: out, label: label}
}

// update redraws the bar, at most ten times a second.
func (b *progressBar) update(p migrate.Progress) {
	if b.out == nil || (time.Since(b.last) < 100*time.Millisecond && p.Done != p.Total) {
		return
	}
	b.last = time.Now()
	const width = 30
	fill, pct := 0, 0
	if p.Total > 0 {
		fill = min(width, width*p.Done/p.Total)
		pct = min(100, 100*p.Done/p.Total)
	}
	folder := p.Folder
	if utf8.RuneCountInString(folder) > 24 {
		folder = string([]rune(folder)[:23]) + "…"
	}
	fmt.Fprintf(b.out, "\r%s [%s%s] %3d%% %d/%d %s  %-24s", b.label, strings.Repeat("#", fill), strings.Repeat(" ", width-fill),
		pct, p.Done, p.Total, humanSize(p.Bytes), folder)
	b.drawn = true
}

// end leaves the line the bar was on.
func (b *progressBar) end() {
	if b.drawn {
		fmt.Fprintln(b.out)
	}
}
