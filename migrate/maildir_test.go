package migrate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sealmail/internal/dovecottest"
	"sealmail/migrate"
)

// writeMaildir writes fs as a Maildir++ tree the way Dovecot keeps one: LF
// line ends, folder names in modified UTF-7, flags in the info, keywords in
// dovecot-keywords, internal dates as modification times. Messages without
// \Seen go to new/ without info, as freshly delivered mail is.
func writeMaildir(t testing.TB, dir string, fs []fixture, folderDirs map[string]string) {
	t.Helper()
	letters := map[string]string{`\Draft`: "D", `\Flagged`: "F", `$Forwarded`: "P", `\Answered`: "R", `\Seen`: "S", `\Deleted`: "T"}
	keywords := map[string][]string{}
	mk := func(path string) {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(path, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(dir)
	for _, d := range folderDirs {
		mk(filepath.Join(dir, d))
	}
	for i, f := range fs {
		path := filepath.Join(dir, folderDirs[f.folder])
		var info, kws []string
		for _, fl := range f.flags {
			if l, ok := letters[fl]; ok {
				info = append(info, l)
				continue
			}
			k := slices.Index(keywords[path], fl)
			if k < 0 {
				keywords[path] = append(keywords[path], fl)
				k = len(keywords[path]) - 1
			}
			kws = append(kws, string(rune('a'+k)))
		}
		slices.Sort(info)
		slices.Sort(kws)
		name := fmt.Sprintf("%d.M%dP4242.old-server,S=%d", f.date.Unix(), i, len(f.content))
		sub := "new"
		if slices.Contains(f.flags, `\Seen`) || len(info)+len(kws) > 0 {
			sub, name = "cur", name+":2,"+strings.Join(info, "")+strings.Join(kws, "")
		}
		file := filepath.Join(path, sub, name)
		if err := os.WriteFile(file, []byte(strings.ReplaceAll(f.content, "\r\n", "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, f.date, f.date); err != nil {
			t.Fatal(err)
		}
	}
	for path, kws := range keywords {
		var b strings.Builder
		for i, k := range kws {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
		if err := os.WriteFile(filepath.Join(path, "dovecot-keywords"), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// maildirDirs are the directories of the fixtures' folders in a Maildir++ tree.
var maildirDirs = map[string]string{
	"INBOX":                 "",
	"Công văn đến":          ".C&APQ-ng v&AQM-n &AREevw-n",
	"Công văn đến/Năm 2024": ".C&APQ-ng v&AQM-n &AREevw-n.N&AQM-m 2024",
	"Sent":                  ".Sent",
	emptyFolder:             ".L&AbA-u tr&Hu8-.Tr&HtE-ng",
}

// withFixtures returns an account holding the fixtures, imported from a maildir.
func withFixtures(t *testing.T) (migrate.Dest, []fixture) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	want := fixtures()
	writeMaildir(t, dir, want, maildirDirs)
	d := newDest(t)
	if _, err := migrate.Maildir(context.Background(), dir, d, migrate.Options{}); err != nil {
		t.Fatal(err)
	}
	return d, want
}

func TestMaildir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	want := fixtures()
	writeMaildir(t, dir, want, maildirDirs)
	ctx := context.Background()
	d := newDest(t)
	sum, err := migrate.Maildir(ctx, dir, d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != len(want) || sum.Errors != 0 || sum.Folders != len(maildirDirs) {
		t.Errorf("first run: %v; want %d folders, %d messages", sum, len(maildirDirs), len(want))
	}
	checkArrived(t, d, want)

	// A client reads a message meanwhile: Dovecot moves it from new/ to cur/
	// and adds :2,S. It is the same message.
	news, _ := filepath.Glob(filepath.Join(dir, "new", "*"))
	if len(news) == 0 {
		t.Fatal("no message in new/")
	}
	if err := os.Rename(news[0], filepath.Join(dir, "cur", filepath.Base(news[0])+":2,S")); err != nil {
		t.Fatal(err)
	}
	sum, err = migrate.Maildir(ctx, dir, d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 0 || sum.Skipped != len(want) {
		t.Errorf("second run: %v; want nothing copied, %d skipped", sum, len(want))
	}
	checkArrived(t, d, want)
}

func TestMaildirNotAMaildir(t *testing.T) {
	_, err := migrate.Maildir(context.Background(), t.TempDir(), newDest(t), migrate.Options{})
	if err == nil || !strings.Contains(err.Error(), "not a maildir") {
		t.Errorf("error %v, want one saying it is not a maildir", err)
	}
}

// TestMaildirFromDovecot imports the maildir Dovecot itself wrote.
func TestMaildirFromDovecot(t *testing.T) {
	dv := dovecottest.Start(t)
	want := fixtures()
	fill(t, dv, "anna", want)
	d := newDest(t)
	sum, err := migrate.Maildir(context.Background(), dv.Maildir("anna"), d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != len(want) || sum.Errors != 0 {
		t.Errorf("%v; want %d messages", sum, len(want))
	}
	// A maildir does not say which folder holds sent mail: it keeps its name.
	for i := range want {
		if want[i].folder == "Sent" {
			want[i].folder = dovecottest.SentName
		}
	}
	checkArrived(t, d, want)
}

// TestMaildirRoundTrip exports an account to a maildir and imports that into
// another: the same folders, messages, flags, keywords and dates.
func TestMaildirRoundTrip(t *testing.T) {
	ctx := context.Background()
	d, want := withFixtures(t)
	out := filepath.Join(t.TempDir(), "export")
	sum, err := migrate.ExportMaildir(ctx, d.Store, d.Account, out, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != len(want) || sum.Errors != 0 {
		t.Errorf("export: %v; want %d messages", sum, len(want))
	}
	for folder, sub := range maildirDirs {
		if st, err := os.Stat(filepath.Join(out, sub, "cur")); err != nil || !st.IsDir() {
			t.Errorf("folder %q: no %s/cur in the export (%v)", folder, sub, err)
		}
	}
	back := newDest(t)
	if _, err := migrate.Maildir(ctx, out, back, migrate.Options{}); err != nil {
		t.Fatal(err)
	}
	checkArrived(t, back, want)

	if _, err := migrate.ExportMaildir(ctx, d.Store, d.Account, out, migrate.Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("export into a directory with files: error %v, want one saying it is not empty", err)
	}
}
