package imapd

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// quotaRoot names the one quota root there is: an account's quota covers all
// its mailboxes.
const quotaRoot = ""

var errNoQuotaRoot = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such quota root"}

func (s *session) GetQuota(root string) (*imapserver.QuotaData, error) {
	q, err := s.quota()
	if err != nil {
		return nil, err
	}
	if root != quotaRoot || q == nil {
		return nil, errNoQuotaRoot
	}
	return q, nil
}

// GetQuotaRoot answers for any mailbox name, existing or not, as RFC 9208
// allows: the account's quota would cover it.
func (s *session) GetQuotaRoot(string) ([]imapserver.QuotaData, error) {
	q, err := s.quota()
	if err != nil || q == nil {
		return nil, err
	}
	return []imapserver.QuotaData{*q}, nil
}

// quota reads the account afresh, since deliveries and other sessions change
// its usage. An unlimited account has no quota root (nil): RFC 9208's QUOTA
// response cannot say "no limit".
func (s *session) quota() (*imapserver.QuotaData, error) {
	a, err := s.srv.Store.Account(s.ctx(), s.acct.Address)
	if err != nil {
		return nil, s.fail("quota", err)
	}
	if a.Quota == 0 {
		return nil, nil
	}
	// STORAGE counts units of 1024 octets; a started unit is used.
	return &imapserver.QuotaData{Root: quotaRoot, Resources: []imapserver.QuotaResource{{
		Type:  imap.QuotaResourceStorage,
		Usage: (a.Used + 1023) / 1024,
		Limit: a.Quota / 1024,
	}}}, nil
}
