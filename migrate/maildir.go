package migrate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sealmail/mailstore"
)

// A Maildir++ tree (the layout of Dovecot, Courier and Postfix maildirs):
//
//	DIR/cur, DIR/new, DIR/tmp          INBOX
//	DIR/.Công văn đến.Năm 2024/cur     the folder "Công văn đến/Năm 2024",
//	                                   its name in modified UTF-7 on disk
//	DIR/.Folder/dovecot-keywords       "0 $Label1" lines: keyword letters a-z
//
// A message is one file named UNIQUE:2,INFO, INFO holding its flags (D draft,
// F flagged, P passed, R replied, S seen, T trashed, then a-z keywords); its
// modification time is its internal date, as Dovecot keeps it.

// maildirFlag is an info letter and the IMAP flag it stands for.
type maildirFlag struct {
	letter byte
	flag   string
}

var maildirFlags = []maildirFlag{
	{'D', `\Draft`}, {'F', `\Flagged`}, {'P', `$Forwarded`}, {'R', `\Answered`}, {'S', `\Seen`}, {'T', `\Deleted`},
}

// Maildir copies the Maildir++ tree dir into d.
func Maildir(ctx context.Context, dir string, d Dest, opt Options) (Summary, error) {
	r := &run{opt: opt}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return r.sum, err
	}
	folders, err := maildirFolders(dir)
	if err != nil {
		return r.sum, err
	}
	lists := make([][]string, len(folders))
	for i, f := range folders {
		if lists[i], err = maildirFiles(f.path); err != nil {
			return r.sum, err
		}
		r.total += len(lists[i])
	}
	for i, f := range folders {
		if err := r.maildirFolder(ctx, d, f, lists[i]); err != nil {
			return r.sum, err
		}
	}
	return r.sum, nil
}

type maildirFolder struct {
	path string // the directory holding cur/ and new/
	name string // the sealmail folder
}

func isMaildir(path string) bool {
	for _, sub := range []string{"cur", "new"} {
		if st, err := os.Stat(filepath.Join(path, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// maildirFolders lists the folders of the tree dir, INBOX first.
func maildirFolders(dir string) ([]maildirFolder, error) {
	if !isMaildir(dir) {
		return nil, fmt.Errorf("%s is not a maildir: it has no cur/ or new/ directory", dir)
	}
	out := []maildirFolder{{dir, mailstore.Inbox}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var subs []maildirFolder
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, ".") || n == "." || n == ".." || !isMaildir(filepath.Join(dir, n)) {
			continue
		}
		parts := strings.Split(n[1:], ".")
		for i, p := range parts {
			// Courier and some Dovecot setups keep UTF-8 names as they are.
			if dec, err := decodeUTF7(p); err == nil {
				parts[i] = dec
			}
			parts[i] = strings.ReplaceAll(parts[i], mailstore.Separator, "-")
		}
		subs = append(subs, maildirFolder{filepath.Join(dir, n), mailstore.CanonicalName(strings.Join(parts, mailstore.Separator))})
	}
	slices.SortFunc(subs, func(a, b maildirFolder) int { return strings.Compare(a.name, b.name) })
	return append(out, subs...), nil
}

// maildirFiles lists the messages of a folder, as "new/NAME" or "cur/NAME":
// in the order of dovecot-uidlist when there is one (the order of the UIDs
// Dovecot gave), then by name, which starts with the delivery time.
func maildirFiles(path string) ([]string, error) {
	var files []string
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(path, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, sub+"/"+e.Name())
			}
		}
	}
	order := uidlistOrder(path)
	rank := func(f string) int {
		if n, ok := order[uniqueName(filepath.Base(f))]; ok {
			return n
		}
		return int(^uint(0) >> 1)
	}
	slices.SortStableFunc(files, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(filepath.Base(a), filepath.Base(b))
	})
	return files, nil
}

// uidlistOrder reads Dovecot's dovecot-uidlist: a header line, then
// "UID [EXTENSIONS] :FILENAME" per message. Missing or odd, it is no order.
func uidlistOrder(path string) map[string]int {
	order := map[string]int{}
	fh, err := os.Open(filepath.Join(path, "dovecot-uidlist"))
	if err != nil {
		return order
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	sc.Scan() // the header
	for sc.Scan() {
		uidStr, rest, _ := strings.Cut(sc.Text(), " ")
		_, name, ok := strings.Cut(rest, ":")
		uid, err := strconv.Atoi(uidStr)
		if ok && err == nil {
			order[uniqueName(name)] = uid
		}
	}
	return order
}

// uniqueName is a maildir file name without its info: it stays the same when
// a client moves the file from new/ to cur/ or changes its flags.
func uniqueName(name string) string {
	u, _, _ := strings.Cut(name, ":")
	return u
}

// dovecotKeywords reads a folder's dovecot-keywords: keyword letter a is
// index 0.
func dovecotKeywords(path string) map[byte]string {
	kw := map[byte]string{}
	b, err := os.ReadFile(filepath.Join(path, "dovecot-keywords"))
	if err != nil {
		return kw
	}
	for _, line := range strings.Split(string(b), "\n") {
		idx, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.Atoi(idx)
		if ok && err == nil && n >= 0 && n < 26 && name != "" {
			kw[byte('a'+n)] = name
		}
	}
	return kw
}

// infoFlags returns the flags of a maildir file name's info.
func infoFlags(name string, keywords map[byte]string) []string {
	_, info, ok := strings.Cut(name, ":2,")
	if !ok {
		return nil
	}
	var flags []string
	for i := 0; i < len(info); i++ {
		c := info[i]
		if c >= 'a' && c <= 'z' {
			if k, ok := keywords[c]; ok {
				flags = append(flags, k)
			}
			continue
		}
		for _, f := range maildirFlags {
			if f.letter == c {
				flags = append(flags, f.flag)
			}
		}
	}
	return flags
}

func (r *run) maildirFolder(ctx context.Context, d Dest, f maildirFolder, files []string) error {
	r.folder(f.name)
	if err := createFolder(ctx, d, f.name); err != nil {
		return err
	}
	source := "maildir:" + f.path
	done, err := d.Store.Imported(ctx, d.Account.ID, source)
	if err != nil {
		return err
	}
	keywords := dovecotKeywords(f.path)
	for _, file := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		unique := uniqueName(filepath.Base(file))
		if _, ok := done[unique]; ok {
			r.done++
			r.sum.Skipped++
			r.report()
			continue
		}
		path := filepath.Join(f.path, file)
		content, err := os.ReadFile(path)
		var st os.FileInfo
		if err == nil {
			st, err = os.Stat(path)
		}
		if err != nil {
			r.failed(d.Account.Address, source, unique, err)
			continue
		}
		err = r.put(ctx, d, f.name, message{
			content: crlf(content),
			flags:   infoFlags(filepath.Base(file), keywords),
			date:    st.ModTime(),
			origin:  mailstore.Origin{Source: source, Item: unique},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ExportMaildir writes every folder of account a into a new Maildir++ tree
// dir, which Maildir imports back as it was, and Dovecot reads.
func ExportMaildir(ctx context.Context, s *mailstore.Store, a mailstore.Account, dir string, opt Options) (Summary, error) {
	r := &run{opt: opt}
	if err := newExportDir(dir); err != nil {
		return r.sum, err
	}
	mbs, err := exportMailboxes(ctx, s, a, r)
	if err != nil {
		return r.sum, err
	}
	for _, mb := range mbs {
		path := dir
		if mb.Name != mailstore.Inbox {
			parts := strings.Split(mb.Name, mailstore.Separator)
			for i, p := range parts {
				// '.' divides levels in Maildir++: spelled encoded, it
				// stays inside its name.
				parts[i] = strings.ReplaceAll(encodeUTF7(p), ".", "&AC4-")
			}
			path = filepath.Join(dir, "."+strings.Join(parts, "."))
		}
		if err := r.exportMaildirFolder(ctx, s, mb, path); err != nil {
			return r.sum, err
		}
	}
	return r.sum, nil
}

// newExportDir makes dir, or takes it if empty: an export never mixes with
// files already there.
func newExportDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty; export into a new or empty directory", dir)
	}
	return nil
}

// exportMailboxes lists a's mailboxes and sets the run's total.
func exportMailboxes(ctx context.Context, s *mailstore.Store, a mailstore.Account, r *run) ([]mailstore.Mailbox, error) {
	mbs, err := s.Mailboxes(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	for _, mb := range mbs {
		st, err := s.MailboxStatus(ctx, mb.ID)
		if err != nil {
			return nil, err
		}
		r.total += int(st.Messages)
	}
	return mbs, nil
}

func (r *run) exportMaildirFolder(ctx context.Context, s *mailstore.Store, mb mailstore.Mailbox, path string) error {
	r.folder(mb.Name)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(path, sub), 0o700); err != nil {
			return err
		}
	}
	if mb.Name != mailstore.Inbox {
		if err := os.WriteFile(filepath.Join(path, "maildirfolder"), nil, 0o600); err != nil {
			return err
		}
	}
	var keywords []string
	err := s.Fetch(ctx, mb.ID, nil, mailstore.FetchContent, func(it mailstore.Item) error {
		if it.Err != nil {
			r.failed("", mb.Name, strconv.FormatUint(uint64(it.UID), 10), it.Err)
			return nil
		}
		info := ""
		for _, mf := range maildirFlags {
			if slices.Contains(it.Flags, mf.flag) {
				info += string(mf.letter)
			}
		}
		var letters []byte
		for _, f := range it.Flags {
			if strings.HasPrefix(f, `\`) || slices.ContainsFunc(maildirFlags, func(m maildirFlag) bool { return m.flag == f }) {
				continue
			}
			i := slices.Index(keywords, f)
			if i < 0 {
				if len(keywords) == 26 {
					r.opt.log().Warn("maildir holds 26 keywords a folder at most; keyword left out", "folder", mb.Name, "keyword", f)
					continue
				}
				keywords = append(keywords, f)
				i = len(keywords) - 1
			}
			letters = append(letters, byte('a'+i))
		}
		slices.Sort(letters)
		content := lf(it.Content)
		name := fmt.Sprintf("%d.M%dU%d.sealmail,S=%d,W=%d:2,%s%s", it.InternalDate.Unix(), mb.UIDValidity, it.UID,
			len(content), len(it.Content), info, letters)
		tmp := filepath.Join(path, "tmp", name)
		if err := os.WriteFile(tmp, content, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(tmp, time.Now(), it.InternalDate); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(path, "cur", name)); err != nil {
			return err
		}
		r.done++
		r.sum.Messages++
		r.sum.Bytes += int64(len(it.Content))
		r.report()
		return nil
	})
	if err != nil {
		return fmt.Errorf("exporting %s: %w", mb.Name, err)
	}
	if len(keywords) == 0 {
		return nil
	}
	var kw strings.Builder
	for i, k := range keywords {
		fmt.Fprintf(&kw, "%d %s\n", i, k)
	}
	return os.WriteFile(filepath.Join(path, "dovecot-keywords"), []byte(kw.String()), 0o600)
}
