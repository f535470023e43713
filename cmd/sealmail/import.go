package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"sealmail/mailstore"
	"sealmail/migrate"
)

var importCmd = &command{name: "import", short: "bring mailboxes over from another server, a maildir or an mbox file", sub: []*command{
	{name: "imap", short: "copy every folder of accounts on a running IMAP server", run: importIMAP},
	{name: "maildir", short: "copy a Maildir++ tree (Dovecot, Courier, Postfix)", run: importMaildir},
	{name: "mbox", short: "copy an mbox file into one folder", run: importMbox},
}}

// importNote ends the help of every import command.
const importNote = "\n\nAn import can run while the server does, and be run again or after an interruption:\n" +
	"it copies only what is not there yet, never a message twice. Messages keep their\n" +
	"flags, keywords and dates, and count against the account's quota.\n" +
	"--accounts FILE.csv migrates many accounts in one run: a header line names the columns,\n" +
	"which are the command's flags without dashes; a column missing takes the flag's value."

// importJob is the import of one account: a row of --accounts, or the flags.
type importJob struct {
	to  string
	run func(ctx context.Context, d migrate.Dest, opt migrate.Options) (migrate.Summary, error)
}

// importIMAP is 'sealmail import imap'.
func importIMAP(ctx context.Context, args []string) error {
	f := newFlags("import imap", "--from imaps://HOST[:PORT] --user USER --password-file FILE --to ADDRESS\n"+
		"       sealmail import imap --from imaps://HOST[:PORT] --accounts FILE.csv\n\n"+
		"Copies every folder of the account USER on a running IMAP server (Dovecot, Zimbra,\n"+
		"MDaemon, Exchange) into the sealmail account ADDRESS. imap://HOST uses STARTTLS;\n"+
		"the connection is always encrypted. Columns of --accounts: to, user, and password-file\n"+
		"or password (then FILE.csv must be readable by its owner only), optionally from."+importNote)
	from := f.String("from", "", "the old server, `URL` imaps://HOST[:PORT] or imap://HOST[:PORT] (STARTTLS)")
	user := f.String("user", "", "the `USER` name to log in to the old server as")
	pwFile := f.String("password-file", "", "read the old server's password from the first line of `FILE`")
	to := f.String("to", "", "the sealmail account `ADDRESS` to copy into")
	accounts := f.String("accounts", "", "migrate every account listed in `FILE.csv`")
	caFile := f.String("tls-ca", "", "also trust the CA certificates (PEM) in `FILE`, for an old server with its own CA or a self-signed certificate")
	insecure := f.Bool("insecure", false, "do not check the old server's certificate at all, and accept TLS 1.0 and 1.1 (old servers; anyone between can read the password)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	cfg, err := sourceTLS(*caFile, *insecure)
	if err != nil {
		return err
	}
	job := func(row map[string]string) (importJob, error) {
		src := migrate.IMAPSource{URL: pick(row, "from", *from), User: pick(row, "user", *user), TLS: cfg}
		if src.URL == "" || src.User == "" {
			return importJob{}, errors.New("--from and --user are required")
		}
		if pw, ok := row["password"]; ok && pw != "" {
			src.Password = pw
		} else {
			file := pick(row, "password-file", *pwFile)
			if file == "" {
				return importJob{}, errors.New("--password-file is required")
			}
			if src.Password, err = readPasswordFile(file); err != nil {
				return importJob{}, err
			}
		}
		if *insecure {
			fmt.Fprintf(os.Stderr, "warning: not checking the certificate of %s (--insecure)\n", src.URL)
		}
		return importJob{pick(row, "to", *to), func(ctx context.Context, d migrate.Dest, opt migrate.Options) (migrate.Summary, error) {
			return migrate.IMAP(ctx, src, d, opt)
		}}, nil
	}
	return runImports(ctx, f, *accounts, []string{"to", "from", "user", "password-file", "password"}, job)
}

// importMaildir is 'sealmail import maildir'.
func importMaildir(ctx context.Context, args []string) error {
	f := newFlags("import maildir", "DIR --to ADDRESS\n       sealmail import maildir --accounts FILE.csv\n\n"+
		"DIR is a Maildir++ tree: its cur/ and new/ are INBOX, its .Name.Sub/ directories the folders.\n"+
		"Flags come from the file names' info (:2,FRS...), keywords from dovecot-keywords, the date\n"+
		"from each file's modification time. Columns of --accounts: to, dir."+importNote)
	to := f.String("to", "", "the sealmail account `ADDRESS` to copy into")
	accounts := f.String("accounts", "", "migrate every account listed in `FILE.csv`")
	pos, err := f.parse(args, 0, 1)
	if err != nil {
		return err
	}
	job := func(row map[string]string) (importJob, error) {
		dir := pick(row, "dir", first(pos))
		if dir == "" {
			return importJob{}, errors.New("the maildir DIR is required")
		}
		return importJob{pick(row, "to", *to), func(ctx context.Context, d migrate.Dest, opt migrate.Options) (migrate.Summary, error) {
			return migrate.Maildir(ctx, dir, d, opt)
		}}, nil
	}
	return runImports(ctx, f, *accounts, []string{"to", "dir"}, job)
}

// importMbox is 'sealmail import mbox'.
func importMbox(ctx context.Context, args []string) error {
	f := newFlags("import mbox", "FILE --to ADDRESS --folder NAME\n       sealmail import mbox --accounts FILE.csv\n\n"+
		"FILE is an mbox (mboxrd or mboxo quoting of From lines); flags come from its Status,\n"+
		"X-Status and X-Keywords headers, which are not kept in the messages, dates from the\n"+
		"From lines. Columns of --accounts: to, file, folder."+importNote)
	to := f.String("to", "", "the sealmail account `ADDRESS` to copy into")
	folder := f.String("folder", "", "the sealmail folder `NAME` to copy into, such as \"Lưu trữ/2023\" (made if missing)")
	accounts := f.String("accounts", "", "migrate every account listed in `FILE.csv`")
	pos, err := f.parse(args, 0, 1)
	if err != nil {
		return err
	}
	job := func(row map[string]string) (importJob, error) {
		file, name := pick(row, "file", first(pos)), pick(row, "folder", *folder)
		if file == "" || name == "" {
			return importJob{}, errors.New("the mbox FILE and --folder are required")
		}
		return importJob{pick(row, "to", *to), func(ctx context.Context, d migrate.Dest, opt migrate.Options) (migrate.Summary, error) {
			return migrate.Mbox(ctx, file, name, d, opt)
		}}, nil
	}
	return runImports(ctx, f, *accounts, []string{"to", "file", "folder"}, job)
}

func first(pos []string) string {
	if len(pos) == 0 {
		return ""
	}
	return pos[0]
}

// pick returns the row's value of column col if it has one, else def.
func pick(row map[string]string, col, def string) string {
	if v := strings.TrimSpace(row[col]); v != "" {
		return v
	}
	return def
}

// runImports runs the import of each row of the CSV file accounts (columns
// cols), or the one of the flags when accounts is "". An account that fails
// does not stop the others.
func runImports(ctx context.Context, f *flags, accounts string, cols []string, job func(row map[string]string) (importJob, error)) error {
	rows := []map[string]string{nil}
	if accounts != "" {
		var err error
		if rows, err = readImportCSV(accounts, cols); err != nil {
			return err
		}
	}
	var jobs []importJob
	for i, row := range rows {
		j, err := job(row)
		if err == nil && j.to == "" {
			err = errors.New("--to ADDRESS is required")
		}
		if err != nil {
			if accounts == "" {
				return f.errorf("%v", err)
			}
			return fmt.Errorf("%s line %d: %w", accounts, i+2, err)
		}
		jobs = append(jobs, j)
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	var total migrate.Summary
	var failed []string
	for _, j := range jobs {
		sum, err := importOne(ctx, s, j)
		total.Add(sum)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return fmt.Errorf("%s: interrupted; run the same command again to resume", j.to)
		case accounts == "":
			return fmt.Errorf("%s: %w", j.to, err)
		default:
			fmt.Fprintf(os.Stderr, "%s: %v\n", j.to, err)
			failed = append(failed, j.to)
		}
	}
	if len(jobs) > 1 {
		fmt.Printf("all %d accounts: %s\n", len(jobs), summaryLine(total))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d accounts not fully imported (%s); fix what is said above and run the same command again: it resumes", len(failed), len(jobs), strings.Join(failed, ", "))
	}
	return nil
}

func importOne(ctx context.Context, s *mailstore.Store, j importJob) (migrate.Summary, error) {
	a, err := s.Account(ctx, j.to)
	if errors.Is(err, mailstore.ErrNotFound) {
		return migrate.Summary{}, fmt.Errorf("no account %s here; create it first with 'sealmail user add %s' (or many with 'sealmail user import')", j.to, j.to)
	}
	if err != nil {
		return migrate.Summary{}, err
	}
	bar := newProgressBar(os.Stderr, a.Address)
	sum, err := j.run(ctx, migrate.Dest{Store: s, Account: a}, migrate.Options{Progress: bar.update})
	bar.end()
	fmt.Printf("%s: %s\n", a.Address, summaryLine(sum))
	if errors.Is(err, mailstore.ErrOverQuota) {
		err = fmt.Errorf("%w; raise the quota with 'sealmail user quota %s SIZE' and run the same command again: it resumes", err, a.Address)
	}
	return sum, err
}

func summaryLine(s migrate.Summary) string {
	return fmt.Sprintf("%d folders, %d messages copied (%s), %d skipped (copied before), %d errors",
		s.Folders, s.Messages, humanSize(s.Bytes), s.Skipped, s.Errors)
}

// readImportCSV reads the rows of an --accounts file, each a map from column
// name to value. The header must name only columns of cols.
func readImportCSV(path string, cols []string) ([]map[string]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the header line: %w", path, err)
	}
	for i, h := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(cols, header[i]) {
			return nil, fmt.Errorf("%s: unknown column %q; the columns are %s", path, h, strings.Join(cols, ", "))
		}
	}
	if slices.Contains(header, "password") {
		st, err := fh.Stat()
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s holds passwords but others may read it (mode %v); chmod 600 %s", path, st.Mode().Perm(), path)
		}
	}
	var rows []map[string]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		row := make(map[string]string, len(rec))
		for i, v := range rec {
			row[header[i]] = v
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s lists no account below its header line", path)
	}
	return rows, nil
}

// readPasswordFile returns the first line of file.
func readPasswordFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pw := strings.TrimSuffix(line, "\r")
	if pw == "" {
		return "", fmt.Errorf("--password-file: the first line of %s is empty", file)
	}
	return pw, nil
}

// sourceTLS is the TLS configuration for connecting to the old server.
func sourceTLS(caFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{}
	if insecure {
		cfg.InsecureSkipVerify = true
		cfg.MinVersion = tls.VersionTLS10
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
