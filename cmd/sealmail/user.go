package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sealmail/config"
	"sealmail/mailstore"
)

var userCmd = &command{name: "user", short: "manage accounts", sub: []*command{
	{name: "add", short: "create an account", run: userAdd},
	{name: "import", short: "create accounts from a CSV file, all or none", run: userImport},
	{name: "list", short: "list accounts with their storage use", run: userList.run},
	{name: "passwd", short: "set an account's password", run: userPasswd},
	{name: "quota", short: "set an account's storage quota (0: unlimited)", run: userQuota},
	{name: "disable", short: "stop an account from logging in and receiving mail", run: userDisable},
	{name: "enable", short: "re-enable a disabled account", run: userEnable},
	{name: "remove", short: "delete an account and all its mail", run: userRemove},
	{name: "vacation", short: "set, show or turn off an account's out-of-office reply", run: userVacation},
}}

func userAdd(ctx context.Context, args []string) error {
	f := newFlags("user add", "ADDRESS [--name NAME] [--role staff|clerk|admin] [--quota SIZE] [--password-stdin]")
	name := f.String("name", "", "the person's full `NAME`")
	role := f.String("role", "staff", "`ROLE`: staff (the default), clerk (the registry clerk) or admin")
	quota := f.String("quota", "0", "storage quota (`SIZE`) such as 2GiB; 0, the default, is unlimited")
	stdin := f.Bool("password-stdin", false, "read the password from the first line of standard input instead of generating one")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	a, err := newAccount(pos[0], *name, *role, *quota)
	if err != nil {
		return err
	}
	generated := !*stdin
	if generated {
		a.Password = newPassword()
	} else if a.Password, err = readPassword(); err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := checkAccountFree(ctx, s, a.Address); err != nil {
		return err
	}
	acct, err := s.AddAccount(ctx, a)
	if err != nil {
		return err
	}
	fmt.Printf("added %s (%s, quota %s)\n", acct.Address, acct.Role, quotaString(acct.Quota))
	if generated {
		fmt.Printf("password: %s\n", a.Password)
	}
	return nil
}

// newAccount checks an account's fields as typed by an admin.
func newAccount(address, name, role, quota string) (mailstore.NewAccount, error) {
	if _, _, err := mailstore.SplitAddress(address); err != nil {
		return mailstore.NewAccount{}, fmt.Errorf("%q is not a mail address; write it as name@domain", address)
	}
	if err := mailstore.CheckAddress(address); err != nil {
		return mailstore.NewAccount{}, fmt.Errorf("address %s refused: %w", address, err)
	}
	r := mailstore.RoleStaff
	if role != "" {
		var err error
		if r, err = mailstore.ParseRole(role); err != nil {
			return mailstore.NewAccount{}, fmt.Errorf("role %q: want staff, clerk or admin", role)
		}
	}
	var q config.Size
	if quota != "" {
		var err error
		if q, err = config.ParseSize(quota); err != nil {
			return mailstore.NewAccount{}, fmt.Errorf("quota: %w", err)
		}
	}
	return mailstore.NewAccount{Address: address, Name: name, Role: r, Quota: int64(q)}, nil
}

// checkAccountFree tells the admin what to fix before an account can be added
// at address. The store checks again when it adds the account; this is for a
// message that says what to do.
func checkAccountFree(ctx context.Context, s *mailstore.Store, address string) error {
	if err := checkDomain(ctx, s, address); err != nil {
		return err
	}
	_, err := s.Account(ctx, address)
	switch {
	case err == nil:
		return fmt.Errorf("account %s already exists; see 'sealmail user list'", address)
	case !errors.Is(err, mailstore.ErrNotFound):
		return err
	}
	return nil
}

// checkDomain checks that address's domain is hosted here.
func checkDomain(ctx context.Context, s *mailstore.Store, address string) error {
	_, domain, err := mailstore.SplitAddress(address)
	if err != nil {
		return err
	}
	ok, err := s.IsLocalDomain(ctx, domain)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("domain %s is not hosted here; add it with 'sealmail domain add %s'", domain, domain)
	}
	return nil
}

func userImport(ctx context.Context, args []string) error {
	f := newFlags("user import", "FILE.csv\n\n"+
		"FILE.csv starts with a header line naming its columns, among address (required),\n"+
		"name, role, quota and password. A blank password is generated; generated passwords\n"+
		"are written to a new CSV file (mode 0600) whose name is printed. Either every\n"+
		"account is created or, on any error, none.")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	file := pos[0]
	as, generated, err := readAccountsCSV(file)
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, a := range as {
		if err := checkAccountFree(ctx, s, a.Address); err != nil {
			return fmt.Errorf("%s:%d: %w", file, a.line, err)
		}
	}
	// Generated passwords are on disk before the accounts exist, so none is ever
	// created with a password nobody can read.
	var pwFile string
	if len(generated) > 0 {
		if pwFile, err = writePasswords(file, as, generated); err != nil {
			return err
		}
	}
	news := make([]mailstore.NewAccount, len(as))
	for i, a := range as {
		news[i] = a.NewAccount
	}
	if _, err := s.AddAccounts(ctx, news); err != nil {
		if pwFile != "" {
			os.Remove(pwFile)
		}
		return fmt.Errorf("%s: no account created: %w", file, err)
	}
	fmt.Printf("added %d accounts from %s\n", len(as), file)
	if pwFile != "" {
		fmt.Printf("generated passwords for %d of them are in %s (readable only by you); hand them out, then delete it\n",
			len(generated), pwFile)
	}
	return nil
}

// csvAccount is an account read from line line of an import file.
type csvAccount struct {
	mailstore.NewAccount
	line int
}

// readAccountsCSV reads an import file and reports the accounts whose password
// it generated, by index.
func readAccountsCSV(file string) (as []csvAccount, generated []int, err error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: reading the header line: %w", file, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) // spreadsheets write a BOM
		switch h {
		case "address", "name", "role", "quota", "password":
		default:
			return nil, nil, fmt.Errorf("%s:1: unknown column %q; the header names address, name, role, quota, password", file, h)
		}
		col[h] = i
	}
	if _, ok := col["address"]; !ok {
		return nil, nil, fmt.Errorf("%s:1: no address column; the first line must be a header such as address,name,role,quota,password", file)
	}
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		line, _ := r.FieldPos(0)
		field := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		a, err := newAccount(field("address"), field("name"), field("role"), field("quota"))
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		key := strings.ToLower(a.Address)
		if prev, ok := seen[key]; ok {
			return nil, nil, fmt.Errorf("%s:%d: %s is already on line %d", file, line, a.Address, prev)
		}
		seen[key] = line
		// Passwords are taken as written: spaces may be part of one.
		if i, ok := col["password"]; ok {
			a.Password = rec[i]
		}
		if a.Password == "" {
			a.Password = newPassword()
			generated = append(generated, len(as))
		}
		as = append(as, csvAccount{a, line})
	}
	if len(as) == 0 {
		return nil, nil, fmt.Errorf("%s: no accounts below the header line", file)
	}
	return as, generated, nil
}

// writePasswords writes the generated passwords to a new file, mode 0600,
// beside the import file, and returns its name.
func writePasswords(file string, as []csvAccount, generated []int) (string, error) {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	fh, err := os.CreateTemp(filepath.Dir(file), base+"-passwords-*.csv")
	if err != nil {
		return "", fmt.Errorf("writing generated passwords: %w", err)
	}
	w := csv.NewWriter(fh)
	w.Write([]string{"address", "password"})
	for _, i := range generated {
		w.Write([]string{as[i].Address, as[i].Password})
	}
	w.Flush()
	err = errors.Join(w.Error(), fh.Sync(), fh.Close())
	if err != nil {
		os.Remove(fh.Name())
		return "", fmt.Errorf("writing generated passwords to %s: %w", fh.Name(), err)
	}
	return fh.Name(), nil
}

// accountJSON is an account in 'user list --json'; scripts rely on its keys.
type accountJSON struct {
	Address  string    `json:"address"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Quota    int64     `json:"quota"` // bytes; 0 is unlimited
	Used     int64     `json:"used"`  // bytes
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
}

var userList = listCommand[mailstore.Account, accountJSON]{
	name:     "user list",
	jsonHelp: "print JSON (sizes in bytes, quota 0 is unlimited)",
	fetch:    (*mailstore.Store).Accounts,
	toJSON: func(a mailstore.Account) accountJSON {
		return accountJSON{a.Address, a.Name, string(a.Role), a.Quota, a.Used, a.Disabled, a.Created}
	},
	header: "ADDRESS\tNAME\tROLE\tUSED / QUOTA\tSTATE",
	row: func(a mailstore.Account) string {
		state := "enabled"
		if a.Disabled {
			state = "disabled"
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s / %s\t%s", a.Address, a.Name, a.Role, humanSize(a.Used), quotaString(a.Quota), state)
	},
}

func quotaString(q int64) string {
	if q == 0 {
		return "unlimited"
	}
	return humanSize(q)
}

func userPasswd(ctx context.Context, args []string) error {
	f := newFlags("user passwd", "ADDRESS [--password-stdin]")
	stdin := f.Bool("password-stdin", false, "read the password from the first line of standard input instead of generating one")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	var pw string
	if *stdin {
		if pw, err = readPassword(); err != nil {
			return err
		}
	} else {
		pw = newPassword()
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.SetPassword(ctx, pos[0], pw); err != nil {
		return accountErr(pos[0], err)
	}
	fmt.Printf("changed the password of %s\n", pos[0])
	if !*stdin {
		fmt.Printf("password: %s\n", pw)
	}
	return nil
}

func userQuota(ctx context.Context, args []string) error {
	f := newFlags("user quota", "ADDRESS SIZE")
	pos, err := f.parse(args, 2, 2)
	if err != nil {
		return err
	}
	q, err := config.ParseSize(pos[1])
	if err != nil {
		return fmt.Errorf("quota: %w (write it like 2GiB or 500MiB, or 0 for no limit)", err)
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.SetQuota(ctx, pos[0], int64(q)); err != nil {
		return accountErr(pos[0], err)
	}
	if q == 0 {
		fmt.Printf("%s has no quota now\n", pos[0])
	} else {
		fmt.Printf("the quota of %s is %s now\n", pos[0], pos[1])
	}
	return nil
}

func userDisable(ctx context.Context, args []string) error {
	return setDisabled(ctx, "disable", args, true)
}

func userEnable(ctx context.Context, args []string) error {
	return setDisabled(ctx, "enable", args, false)
}

func setDisabled(ctx context.Context, verb string, args []string, disabled bool) error {
	f := newFlags("user "+verb, "ADDRESS")
	pos, s, err := f.parseOpen(args, 1, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.SetDisabled(ctx, pos[0], disabled); err != nil {
		return accountErr(pos[0], err)
	}
	fmt.Printf("%sd %s\n", verb, pos[0])
	return nil
}

func userRemove(ctx context.Context, args []string) error {
	f := newFlags("user remove", "ADDRESS --yes")
	yes := f.Bool("yes", false, "confirm: the account and all its mail are deleted for good")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if !*yes {
		return fmt.Errorf("removing %s deletes the account and all its mail for good; "+
			"to go ahead, run it again with --yes (consider 'sealmail backup' first)", pos[0])
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RemoveAccount(ctx, pos[0]); err != nil {
		return accountErr(pos[0], err)
	}
	fmt.Printf("removed %s and all its mail\n", pos[0])
	return nil
}

// accountErr explains a failed operation on one account.
func accountErr(address string, err error) error {
	if errors.Is(err, mailstore.ErrNotFound) {
		return fmt.Errorf("there is no account %s; see 'sealmail user list'", address)
	}
	return err
}
