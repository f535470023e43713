package mailstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Domain is a mail domain hosted here; each is an agency.
type Domain struct {
	Name            string
	OrganID         string // e.g. 000.00.12.H10
	OrganName       string
	Code            string // code notation for document numbers, e.g. STTTT-VP
	OfficialAddress string // the agency's official mailbox, e.g. vanthu@agency
	Created         time.Time
}

// Role says what an account may do.
type Role string

const (
	RoleStaff Role = "staff"
	RoleClerk Role = "clerk" // the registry clerk (văn thư) who releases official documents
	RoleAdmin Role = "admin"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case RoleStaff, RoleClerk, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q (want staff, clerk or admin)", ErrInvalid, s)
}

// Account is a user.
type Account struct {
	ID       int64
	Address  string
	Name     string
	Role     Role
	Quota    int64 // bytes; 0 means unlimited
	Used     int64 // bytes in all the account's mailboxes
	Disabled bool
	Created  time.Time

	// logoutMark is the newest logouts id when Authenticate returned the
	// account: its sessions end at the next one (WatchLogout).
	logoutMark int64
}

// DefaultMailboxes are created with every account, with their special-use attribute.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Sent", `\Sent`},
	{"Drafts", `\Drafts`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}

// SplitAddress returns the local part and domain of a lower-cased address.
func SplitAddress(addr string) (local, domain string, err error) {
	addr = normAddr(addr)
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 || strings.ContainsAny(addr, " \t\r\n<>,;") {
		return "", "", fmt.Errorf("%w: address %q", ErrInvalid, addr)
	}
	return addr[:i], addr[i+1:], nil
}

// AddDomain adds a hosted domain.
func (s *Store) AddDomain(ctx context.Context, d Domain) error {
	d.Name = normAddr(d.Name)
	if err := CheckDomain(d.Name); err != nil {
		return err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO domains (name, organ_id, organ_name, code, official_address, created) VALUES (?,?,?,?,?,?)`,
			d.Name, d.OrganID, d.OrganName, d.Code, normAddr(d.OfficialAddress), now())
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("domain %s: %w", d.Name, ErrExists)
	}
	return err
}

// UpdateDomain replaces a domain's agency details.
func (s *Store) UpdateDomain(ctx context.Context, d Domain) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`UPDATE domains SET organ_id=?, organ_name=?, code=?, official_address=? WHERE name=?`,
			d.OrganID, d.OrganName, d.Code, normAddr(d.OfficialAddress), normAddr(d.Name))
		if err != nil {
			return err
		}
		return mustAffect(r, "domain "+d.Name)
	})
}

// RemoveDomain removes a domain that has no accounts left.
func (s *Store) RemoveDomain(ctx context.Context, name string) error {
	name = normAddr(name)
	return s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM accounts WHERE domain=?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: domain %s still has %d accounts; remove them first", ErrInvalid, name, n)
		}
		if _, err := tx.Exec(`DELETE FROM aliases WHERE address LIKE ? ESCAPE '\'`, "%@"+escapeLike(name)); err != nil {
			return err
		}
		r, err := tx.Exec(`DELETE FROM domains WHERE name=?`, name)
		if err != nil {
			return err
		}
		return mustAffect(r, "domain "+name)
	})
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func mustAffect(r sql.Result, what string) error {
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// Domain returns one hosted domain.
func (s *Store) Domain(ctx context.Context, name string) (Domain, error) {
	ds, err := s.domains(ctx, `WHERE name=?`, normAddr(name))
	if err != nil {
		return Domain{}, err
	}
	if len(ds) == 0 {
		return Domain{}, fmt.Errorf("domain %s: %w", name, ErrNotFound)
	}
	return ds[0], nil
}

// Domains lists hosted domains by name.
func (s *Store) Domains(ctx context.Context) ([]Domain, error) {
	return s.domains(ctx, `ORDER BY name`)
}

func (s *Store) domains(ctx context.Context, where string, args ...any) ([]Domain, error) {
	ds, err := queryAll(ctx, s, scanDomain, `SELECT name, organ_id, organ_name, code, official_address, created FROM domains `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("mailstore: domains: %w", err)
	}
	return ds, nil
}

func scanDomain(sc scanner) (Domain, error) {
	var d Domain
	var c int64
	err := sc.Scan(&d.Name, &d.OrganID, &d.OrganName, &d.Code, &d.OfficialAddress, &c)
	d.Created = time.Unix(c, 0)
	return d, err
}

// IsLocalDomain reports whether mail for domain is delivered here.
func (s *Store) IsLocalDomain(ctx context.Context, domain string) (bool, error) {
	_, err := s.Domain(ctx, domain)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// NewAccount describes an account to create.
type NewAccount struct {
	Address  string
	Name     string
	Role     Role
	Quota    int64
	Password string
}

// AddAccount creates an account with its default mailboxes.
func (s *Store) AddAccount(ctx context.Context, a NewAccount) (Account, error) {
	accts, err := s.AddAccounts(ctx, []NewAccount{a})
	if err != nil {
		return Account{}, err
	}
	return accts[0], nil
}

// AddAccounts creates several accounts in one transaction: all or none.
func (s *Store) AddAccounts(ctx context.Context, as []NewAccount) ([]Account, error) {
	type prepared struct {
		NewAccount
		domain, hash string
	}
	ps := make([]prepared, len(as))
	seen := map[string]bool{}
	for i, a := range as {
		if err := CheckAddress(a.Address); err != nil {
			return nil, err
		}
		_, domain, _ := SplitAddress(a.Address)
		a.Address = normAddr(a.Address)
		if seen[a.Address] {
			return nil, fmt.Errorf("%w: %s listed twice", ErrInvalid, a.Address)
		}
		seen[a.Address] = true
		if a.Role == "" {
			a.Role = RoleStaff
		}
		if _, err := ParseRole(string(a.Role)); err != nil {
			return nil, err
		}
		if a.Password == "" {
			return nil, fmt.Errorf("%w: empty password for %s", ErrInvalid, a.Address)
		}
		if a.Quota < 0 {
			return nil, fmt.Errorf("%w: negative quota for %s", ErrInvalid, a.Address)
		}
		ps[i] = prepared{NewAccount: a, domain: domain}
	}
	// Hash on every core: importing 3,000 staff should not take minutes.
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i := range ps {
		g.Go(func() error {
			var err error
			ps[i].hash, err = HashPassword(ps[i].Password, s.pw)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]Account, len(ps))
	err := s.write(ctx, func(tx *sql.Tx) error {
		created := now()
		for i, p := range ps {
			var ok int
			if err := tx.QueryRow(`SELECT COUNT(*) FROM domains WHERE name=?`, p.domain).Scan(&ok); err != nil {
				return err
			}
			if ok == 0 {
				return fmt.Errorf("%w: domain %s is not hosted here; add it with 'sealmail domain add %s'", ErrNotFound, p.domain, p.domain)
			}
			r, err := tx.Exec(`INSERT INTO accounts (address, domain, name, role, password, quota, created) VALUES (?,?,?,?,?,?,?)`,
				p.Address, p.domain, p.Name, string(p.Role), p.hash, p.Quota, created)
			if isUnique(err) {
				return fmt.Errorf("account %s: %w", p.Address, ErrExists)
			}
			if err != nil {
				return err
			}
			id, _ := r.LastInsertId()
			for _, mb := range DefaultMailboxes {
				if _, err := createMailbox(tx, id, mb.Name, mb.SpecialUse, true); err != nil {
					return err
				}
			}
			out[i] = Account{ID: id, Address: p.Address, Name: p.Name, Role: p.Role, Quota: p.Quota, Created: time.Unix(created, 0)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const accountCols = `id, address, name, role, quota, used, disabled, created`

func scanAccount(sc scanner) (Account, error) {
	var a Account
	var role string
	var created int64
	err := sc.Scan(&a.ID, &a.Address, &a.Name, &role, &a.Quota, &a.Used, &a.Disabled, &created)
	a.Role = Role(role)
	a.Created = time.Unix(created, 0)
	return a, err
}

// Account returns the account with this address.
func (s *Store) Account(ctx context.Context, address string) (Account, error) {
	return queryOne(ctx, s, scanAccount, "account "+address, `SELECT `+accountCols+` FROM accounts WHERE address=?`, normAddr(address))
}

// Accounts lists all accounts by address.
func (s *Store) Accounts(ctx context.Context) ([]Account, error) {
	as, err := queryAll(ctx, s, scanAccount, `SELECT `+accountCols+` FROM accounts ORDER BY address`)
	if err != nil {
		return nil, fmt.Errorf("mailstore: accounts: %w", err)
	}
	return as, nil
}

// SetPassword replaces an account's password and, in the same transaction,
// ends every session of the account: web portal sessions at once, IMAP and
// SMTP sessions of any process when their notifier sees it (WatchLogout).
// Whoever logged in with the old password is out (the portal logs its own
// user back in).
func (s *Store) SetPassword(ctx context.Context, address, password string) error {
	if password == "" {
		return fmt.Errorf("%w: empty password", ErrInvalid)
	}
	hash, err := HashPassword(password, s.pw)
	if err != nil {
		return err
	}
	address = normAddr(address)
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`UPDATE accounts SET password=? WHERE address=?`, hash, address)
		if err != nil {
			return err
		}
		if err := mustAffect(r, "account "+address); err != nil {
			return err
		}
		if err := addLogout(tx, address); err != nil {
			return err
		}
		return endWebSessions(tx, address)
	})
}

// SetDisabled disables or re-enables an account. A disabled account cannot log in
// and receives no mail.
func (s *Store) SetDisabled(ctx context.Context, address string, disabled bool) error {
	return s.updateAccount(ctx, address, `disabled=?`, disabled)
}

// SetQuota sets an account's quota in bytes (0: unlimited).
func (s *Store) SetQuota(ctx context.Context, address string, quota int64) error {
	if quota < 0 {
		return fmt.Errorf("%w: negative quota", ErrInvalid)
	}
	return s.updateAccount(ctx, address, `quota=?`, quota)
}

func (s *Store) updateAccount(ctx context.Context, address, set string, v any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`UPDATE accounts SET `+set+` WHERE address=?`, v, normAddr(address))
		if err != nil {
			return err
		}
		return mustAffect(r, "account "+address)
	})
}

// RemoveAccount deletes an account, its mailboxes and messages, and its alias
// memberships. Content no longer referenced is reclaimed.
func (s *Store) RemoveAccount(ctx context.Context, address string) error {
	address = normAddr(address)
	return s.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRow(`SELECT id FROM accounts WHERE address=?`, address).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("account %s: %w", address, ErrNotFound)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(`SELECT id FROM mailboxes WHERE account_id=?`, id)
		if err != nil {
			return err
		}
		var mbs []int64
		for rows.Next() {
			var mb int64
			rows.Scan(&mb)
			mbs = append(mbs, mb)
		}
		rows.Close()
		for _, mb := range mbs {
			if err := deleteMailbox(tx, mb); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`DELETE FROM aliases WHERE target=? OR address=?`, address, address); err != nil {
			return err
		}
		_, err = tx.Exec(`DELETE FROM accounts WHERE id=?`, id)
		return err
	})
}

// LoginName is the name of the account a login as name is checked against,
// however it is spelled. Login throttles count failures by it, so it must stay
// what Authenticate looks up (were aliases ever to log in, it would resolve them).
func LoginName(name string) string { return normAddr(name) }

// Authenticate checks a password and returns the account. It returns ErrAuthFailed
// for an unknown address or a wrong password alike, and ErrDisabled for a disabled
// account with the right password.
func (s *Store) Authenticate(ctx context.Context, address, password string) (Account, error) {
	address = LoginName(address)
	var a Account
	var hash string
	err := s.read(ctx, func(db *sql.DB) error {
		// The newest logout is read with the password: a change committed
		// after this read has a larger id, and ends the session.
		row := db.QueryRowContext(ctx, `SELECT `+accountCols+`, password, (SELECT COALESCE(MAX(id), 0) FROM logouts)
			FROM accounts WHERE address=?`, address)
		var role string
		var created int64
		err := row.Scan(&a.ID, &a.Address, &a.Name, &role, &a.Quota, &a.Used, &a.Disabled, &created, &hash, &a.logoutMark)
		a.Role, a.Created = Role(role), time.Unix(created, 0)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a real check so addresses cannot be probed by timing.
		CheckPassword(password, s.dummyHash())
		return Account{}, ErrAuthFailed
	}
	if err != nil {
		return Account{}, fmt.Errorf("mailstore: authenticate: %w", err)
	}
	k := s.auth.key(address, password)
	if !s.auth.check(k, hash) {
		if !CheckPassword(password, hash) {
			return Account{}, ErrAuthFailed
		}
		s.auth.add(k, hash)
	}
	if a.Disabled {
		return Account{}, ErrDisabled
	}
	return a, nil
}

func (s *Store) dummyHash() string {
	s.dummyOnce.Do(func() { s.dummy, _ = HashPassword("dummy", s.pw) })
	return s.dummy
}

// Alias maps an address to one or more targets (accounts or other aliases).
type Alias struct {
	Address string // '@domain' is the domain's catch-all
	Targets []string
}

// AddAlias adds targets to an alias (creating it). The alias's domain must be hosted.
func (s *Store) AddAlias(ctx context.Context, address string, targets []string) error {
	address = normAddr(address)
	domain := strings.TrimPrefix(address, "@")
	if domain == address {
		if err := CheckAddress(address); err != nil {
			return err
		}
		_, domain, _ = SplitAddress(address)
	} else if err := CheckDomain(domain); err != nil {
		return err
	}
	if len(targets) == 0 {
		return fmt.Errorf("%w: alias %s needs at least one target", ErrInvalid, address)
	}
	for i, t := range targets {
		if _, _, err := SplitAddress(t); err != nil {
			return err
		}
		targets[i] = normAddr(t)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM domains WHERE name=?`, domain).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: domain %s is not hosted here", ErrNotFound, domain)
		}
		if err := tx.QueryRow(`SELECT COUNT(*) FROM accounts WHERE address=?`, address).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %s is an account, not an alias", ErrExists, address)
		}
		for _, t := range targets {
			if _, err := tx.Exec(`INSERT OR IGNORE INTO aliases (address, target) VALUES (?,?)`, address, t); err != nil {
				return err
			}
		}
		return checkAliases(tx, address)
	})
}

// checkAliases refuses, inside the transaction that changed it, an alias
// whose expansion (as Resolve does it) would loop, would go deeper than
// maxAliasDepth, or would reach nobody (only local addresses that are neither
// accounts nor aliases): each would otherwise be accepted now and found only
// when mail bounced as "No such user". A target that does not exist yet is
// allowed beside ones that do, so lists can name each other in any order.
func checkAliases(tx *sql.Tx, address string) error {
	var path, unknown []string
	reached, visits := 0, 0
	var walk func(addr string) error
	walk = func(addr string) error {
		if visits++; visits > 100000 {
			return invalidf("alias %s expands to more than 100,000 addresses", address)
		}
		if i := slices.Index(path, addr); i >= 0 {
			return invalidf("alias loop: %s", strings.Join(append(path[i:], addr), " → "))
		}
		if len(path) > maxAliasDepth {
			return invalidf("alias chain %s is deeper than %d aliases", strings.Join(append(path, addr), " → "), maxAliasDepth)
		}
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM accounts WHERE address=?`, addr).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			reached++
			return nil
		}
		targets, err := txStrings(tx, `SELECT target FROM aliases WHERE address=?`, addr)
		if err != nil {
			return err
		}
		if len(targets) == 0 {
			_, domain, _ := SplitAddress(addr)
			if err := tx.QueryRow(`SELECT COUNT(*) FROM domains WHERE name=?`, domain).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				unknown = append(unknown, addr)
			} else {
				reached++ // forwarded elsewhere
			}
			return nil
		}
		path = append(path, addr)
		for _, t := range targets {
			if err := walk(t); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		return nil
	}
	if err := walk(address); err != nil {
		return err
	}
	if reached == 0 {
		return invalidf("alias %s would reach nobody: %s is neither an account nor an alias here; add it first", address, strings.Join(unknown, ", "))
	}
	return nil
}

func txStrings(tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// RemoveAlias removes an alias with all its targets.
func (s *Store) RemoveAlias(ctx context.Context, address string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`DELETE FROM aliases WHERE address=?`, normAddr(address))
		if err != nil {
			return err
		}
		return mustAffect(r, "alias "+address)
	})
}

// Aliases lists aliases by address.
func (s *Store) Aliases(ctx context.Context) ([]Alias, error) {
	var out []Alias
	err := s.read(ctx, func(db *sql.DB) error {
		out = out[:0]
		rows, err := db.QueryContext(ctx, `SELECT address, target FROM aliases ORDER BY address, target`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a, t string
			if err := rows.Scan(&a, &t); err != nil {
				return err
			}
			if len(out) == 0 || out[len(out)-1].Address != a {
				out = append(out, Alias{Address: a})
			}
			out[len(out)-1].Targets = append(out[len(out)-1].Targets, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: aliases: %w", err)
	}
	return out, nil
}

// maxAliasDepth bounds alias expansion so a loop of aliases cannot hang delivery.
const maxAliasDepth = 8

// Resolve expands an address to the accounts that receive its mail: the account
// itself, or an alias's targets (recursively), or the domain's catch-all. Disabled
// accounts are included; the caller decides. A local address that resolves to
// nobody returns ErrNotFound. Remote targets of an alias are returned in remote.
func (s *Store) Resolve(ctx context.Context, address string) (accounts []Account, remote []string, err error) {
	address = normAddr(address)
	seen := map[string]bool{}
	var walk func(addr string, depth int) error
	walk = func(addr string, depth int) error {
		if seen[addr] || depth > maxAliasDepth {
			return nil
		}
		seen[addr] = true
		a, err := s.Account(ctx, addr)
		if err == nil {
			accounts = append(accounts, a)
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		targets, err := s.aliasTargets(ctx, addr)
		if err != nil {
			return err
		}
		if len(targets) == 0 && depth == 0 {
			if _, domain, err := SplitAddress(addr); err == nil {
				targets, err = s.aliasTargets(ctx, "@"+domain)
				if err != nil {
					return err
				}
			}
		}
		if len(targets) == 0 && depth > 0 {
			// A target outside our domains is forwarded; an unknown local one is dropped
			// from the list (the list still reaches its other members).
			if _, domain, err := SplitAddress(addr); err == nil {
				if local, _ := s.IsLocalDomain(ctx, domain); !local {
					remote = append(remote, addr)
				}
			}
			return nil
		}
		for _, t := range targets {
			if err := walk(t, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(address, 0); err != nil {
		return nil, nil, fmt.Errorf("mailstore: resolve %s: %w", address, err)
	}
	if len(accounts) == 0 && len(remote) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", address, ErrNotFound)
	}
	sort.Slice(accounts, func(i, j int) bool { return accounts[i].ID < accounts[j].ID })
	return accounts, remote, nil
}

func (s *Store) aliasTargets(ctx context.Context, address string) ([]string, error) {
	return queryAll(ctx, s, scanString, `SELECT target FROM aliases WHERE address=?`, address)
}

// Owns reports whether an account may send as address: its own address, or an
// alias whose expansion includes the account (a member of all@ may write as all@).
// Catch-alls do not count: receiving a domain's stray mail is not owning it.
func (s *Store) Owns(ctx context.Context, a Account, address string) (bool, error) {
	address = normAddr(address)
	if address == a.Address {
		return true, nil
	}
	targets, err := s.aliasTargets(ctx, address)
	if err != nil || len(targets) == 0 {
		return false, err
	}
	accts, _, err := s.Resolve(ctx, address)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	for _, m := range accts {
		if m.ID == a.ID {
			return true, nil
		}
	}
	return false, nil
}
