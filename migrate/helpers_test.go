package migrate_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/migrate"
)

// newDest opens a fresh store with the account anna@so-tc.example.vn.
func newDest(t testing.TB) migrate.Dest {
	t.Helper()
	s, err := mailstore.Open(t.TempDir(), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.AddDomain(ctx, mailstore.Domain{Name: "so-tc.example.vn"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.AddAccount(ctx, mailstore.NewAccount{Address: "anna@so-tc.example.vn", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return migrate.Dest{Store: s, Account: a}
}

// fixture is a message as a test puts it into a source.
type fixture struct {
	folder  string // the sealmail folder it must arrive in
	content string // CRLF line ends
	flags   []string
	date    time.Time
}

// fixtures are messages with what an agency's mail has: Vietnamese folder
// names and text, 8-bit bodies, keywords, odd dates, no Message-ID.
func fixtures() []fixture {
	vn := time.FixedZone("ICT", 7*3600)
	msg := func(id, subject, body string) string {
		h := "From: =?UTF-8?Q?Nguy=E1=BB=85n_V=C4=83n_A?= <a@old.example.vn>\r\n" +
			"To: anna@so-tc.example.vn\r\n" +
			"Subject: " + subject + "\r\n" +
			"Date: Mon, 02 Jan 2006 15:04:05 +0700\r\n"
		if id != "" {
			h += "Message-ID: <" + id + "@old.example.vn>\r\n"
		}
		return h + "MIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + "\r\n"
	}
	return []fixture{
		{"INBOX", msg("1", "Công văn số 12/UBND", "Kính gửi các đơn vị: đề nghị báo cáo trước ngày 15.\r\nFrom the start of a line"), []string{`\Seen`}, time.Date(2019, 3, 4, 8, 30, 0, 0, vn)},
		{"INBOX", msg("2", "Flagged", "Khẩn."), []string{`\Flagged`, `$Urgent`}, time.Date(1999, 12, 31, 23, 59, 59, 0, vn)},
		{"INBOX", msg("", "No Message-ID", "Không có Message-ID."), nil, time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"Công văn đến", msg("3", "=?UTF-8?B?xJDDoyB0cuG6oyBs4budaQ==?=", "Đã trả lời."), []string{`\Seen`, `\Answered`, `Da_xu_ly`}, time.Date(2021, 7, 1, 0, 0, 1, 0, vn)},
		{"Công văn đến/Năm 2024", msg("4", "Hồ sơ", "Lưu."), []string{`\Seen`, `$Label1`, `NonJunk`}, time.Date(2024, 1, 1, 0, 0, 0, 0, vn)},
		{"Công văn đến/Năm 2024", msg("5", "Draft", "Bản nháp."), []string{`\Draft`}, time.Date(2024, 12, 31, 23, 0, 0, 0, vn)},
		{"Sent", msg("6", "Sent", "Đã gửi."), []string{`\Seen`}, time.Date(2025, 5, 5, 5, 5, 5, 0, vn)},
	}
}

// emptyFolder is a folder the sources hold without messages; it must arrive too.
const emptyFolder = "Lưu trữ/Trống"

// checkArrived checks that d holds exactly the fixtures (each once, byte for
// byte, with its flags and internal date) and the empty folder.
func checkArrived(t *testing.T, d migrate.Dest, want []fixture) {
	t.Helper()
	ctx := context.Background()
	mbs, err := d.Store.Mailboxes(ctx, d.Account.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mb := range mbs {
		names = append(names, mb.Name)
	}
	for _, f := range append(want, fixture{folder: emptyFolder}) {
		if !slices.Contains(names, f.folder) {
			t.Errorf("folder %q missing; have %q", f.folder, names)
		}
	}
	type got struct {
		content string
		flags   string
		date    int64
	}
	var have []got
	byFolder := map[string]int{}
	for _, mb := range mbs {
		err := d.Store.Fetch(ctx, mb.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
			if it.Err != nil {
				return it.Err
			}
			have = append(have, got{mb.Name + "\x00" + string(it.Content), flagString(it.Flags), it.InternalDate.Unix()})
			byFolder[mb.Name]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(have) != len(want) {
		t.Errorf("%d messages arrived, want %d: by folder %v", len(have), len(want), byFolder)
	}
	for _, f := range want {
		w := got{f.folder + "\x00" + f.content, flagString(f.flags), f.date.Unix()}
		i := slices.IndexFunc(have, func(g got) bool { return g.content == w.content })
		if i < 0 {
			t.Errorf("message %.60q in %s did not arrive (byte for byte)", strings.SplitN(f.content, "Subject: ", 2)[1], f.folder)
			continue
		}
		if have[i].flags != w.flags {
			t.Errorf("message in %s: flags %q, want %q", f.folder, have[i].flags, w.flags)
		}
		if have[i].date != w.date {
			t.Errorf("message in %s: internal date %v, want %v", f.folder, time.Unix(have[i].date, 0), f.date)
		}
		have = slices.Delete(have, i, i+1)
	}
}

// flagString is a set of flags in one canonical spelling, for comparing.
func flagString(flags []string) string {
	var out []string
	for _, f := range flags {
		if f != `\Recent` {
			out = append(out, mailstore.CanonicalFlag(f))
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
