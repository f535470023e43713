package migrate_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/migrate"
)

// The mbox of the tests, as mutt or Dovecot leave one: UW IMAP's pseudo
// message first, flags in Status/X-Status/X-Keywords, From lines of bodies
// quoted (">From", and ">>From" for a line that was ">From"), LF line ends.
const testMbox = `From MAILER-DAEMON Mon Jan  1 00:00:00 2024
Date: Mon, 01 Jan 2024 00:00:00 +0000
From: Mail System Internal Data <MAILER-DAEMON@old>
Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA
X-IMAP: 1704067200 0000000002

This text is part of the internal format of your mail folder.

From a@old.example.vn  Sat Mar  2 09:15:00 2024
From: a@old.example.vn
Subject: =?UTF-8?Q?B=C3=A1o_c=C3=A1o?=
Status: RO
X-Status: AF
X-Keywords: $Label1 Da_xu_ly
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Báo cáo quý I.
>From the minutes:
>>From a quoted line.

From b@old.example.vn Sun Mar  3 10:00:00 2024
From: b@old.example.vn
Subject: unread
Status: O

Chưa đọc.

From b@old.example.vn Sun Mar  3 10:00:00 2024
From: b@old.example.vn
Subject: unread
Status: O

Chưa đọc.

`

// testMboxWant is what the mbox holds: the same message twice is two messages.
func testMboxWant(folder string) []fixture {
	local := func(y int, mo time.Month, d, h, mi int) time.Time {
		return time.Date(y, mo, d, h, mi, 0, 0, time.Local)
	}
	unread := "From: b@old.example.vn\r\nSubject: unread\r\n\r\nChưa đọc.\r\n"
	return []fixture{
		{folder, "From: a@old.example.vn\r\nSubject: =?UTF-8?Q?B=C3=A1o_c=C3=A1o?=\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
			"Báo cáo quý I.\r\nFrom the minutes:\r\n>From a quoted line.\r\n",
			[]string{`\Seen`, `\Answered`, `\Flagged`, `$Label1`, `Da_xu_ly`}, local(2024, 3, 2, 9, 15)},
		{folder, unread, nil, local(2024, 3, 3, 10, 0)},
		{folder, unread, nil, local(2024, 3, 3, 10, 0)},
	}
}

func TestMbox(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mbox")
	if err := os.WriteFile(file, []byte(testMbox), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d := newDest(t)
	const folder = "Lưu trữ/2024"
	sum, err := migrate.Mbox(ctx, file, folder, d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := testMboxWant(folder)
	if sum.Messages != len(want) || sum.Errors != 0 {
		t.Errorf("first run: %v; want %d messages", sum, len(want))
	}
	// checkArrived also wants the empty folder of the other sources.
	if _, err := d.Store.CreateMailbox(ctx, d.Account.ID, emptyFolder, ""); err != nil {
		t.Fatal(err)
	}
	checkArrived(t, d, want)

	// A message appended to the file later is copied alone by the next run.
	late := "From c@old.example.vn Mon Mar  4 08:00:00 2024\nFrom: c@old.example.vn\nSubject: late\n\nMuộn.\n\n"
	fh, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(late)
	fh.Close()
	sum, err = migrate.Mbox(ctx, file, folder, d, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 1 || sum.Skipped != len(want) {
		t.Errorf("second run: %v; want 1 copied, %d skipped", sum, len(want))
	}
	want = append(want, fixture{folder, "From: c@old.example.vn\r\nSubject: late\r\n\r\nMuộn.\r\n", nil, time.Date(2024, 3, 4, 8, 0, 0, 0, time.Local)})
	checkArrived(t, d, want)
}

func TestMboxNotAnMbox(t *testing.T) {
	file := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(file, []byte("Subject: hello\n\nnot an mbox\n"), 0o600)
	_, err := migrate.Mbox(context.Background(), file, "INBOX", newDest(t), migrate.Options{})
	if err == nil || !strings.Contains(err.Error(), "not an mbox") {
		t.Errorf("error %v, want one saying it is not an mbox", err)
	}
}

// TestMboxRoundTrip exports every folder to mbox files and imports each into
// another account: the same messages, flags, keywords and dates.
func TestMboxRoundTrip(t *testing.T) {
	ctx := context.Background()
	d, want := withFixtures(t)
	out := filepath.Join(t.TempDir(), "mbox")
	sum, err := migrate.ExportMbox(ctx, d.Store, d.Account, out, "", migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != len(want) {
		t.Errorf("export: %v; want %d messages", sum, len(want))
	}
	back := newDest(t)
	var folders []string
	for _, f := range append(want, fixture{folder: emptyFolder}) {
		if !slices.Contains(folders, f.folder) {
			folders = append(folders, f.folder)
		}
	}
	for _, f := range folders {
		// An empty folder is an empty file, which imports as an empty folder.
		if _, err := migrate.Mbox(ctx, filepath.Join(out, filepath.FromSlash(f)+".mbox"), f, back, migrate.Options{}); err != nil {
			t.Fatalf("importing %s: %v", f, err)
		}
	}
	checkArrived(t, back, want)

	// One folder into one file.
	file := filepath.Join(t.TempDir(), "inbox.mbox")
	sum, err = migrate.ExportMbox(ctx, d.Store, d.Account, file, "INBOX", migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 3 {
		t.Errorf("export of INBOX: %v; want 3 messages", sum)
	}
	b, _ := os.ReadFile(file)
	for _, s := range []string{"\n>From the start of a line\n", "X-Keywords: $Urgent\n", "Status: RO\n", "X-Status: F\n"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("exported mbox lacks %q:\n%s", s, b)
		}
	}
}
