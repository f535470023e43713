package imapserver

// sealmail: this file adds the server side of QUOTA (RFC 9208), which
// upstream lacks. SETQUOTA is always refused: QUOTASET is never advertised.

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// QuotaResource is the usage and limit of one resource, in the units RFC 9208
// gives it (STORAGE counts units of 1024 octets).
type QuotaResource struct {
	Type  imap.QuotaResourceType
	Usage int64
	Limit int64
}

// QuotaData is a quota root and its resources. A root must have at least one
// resource.
type QuotaData struct {
	Root      string
	Resources []QuotaResource
}

func (c *Conn) handleGetQuota(dec *imapwire.Decoder) error {
	var root string
	if !dec.ExpectSP() || !dec.ExpectAString(&root) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	session, err := c.quotaSession()
	if err != nil {
		return err
	}
	data, err := session.GetQuota(root)
	if err != nil {
		return err
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	return writeQuota(enc.Encoder, data)
}

func (c *Conn) handleGetQuotaRoot(dec *imapwire.Decoder) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	session, err := c.quotaSession()
	if err != nil {
		return err
	}
	roots, err := session.GetQuotaRoot(mailbox)
	if err != nil {
		return err
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("QUOTAROOT").SP().Mailbox(mailbox)
	for _, data := range roots {
		enc.SP().String(data.Root)
	}
	if err := enc.CRLF(); err != nil {
		return err
	}
	for _, data := range roots {
		if err := writeQuota(enc.Encoder, &data); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) handleSetQuota(dec *imapwire.Decoder) error {
	var root string
	if !dec.ExpectSP() || !dec.ExpectAString(&root) || !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectList(func() error {
		var name string
		var limit int64
		if !dec.ExpectAtom(&name) || !dec.ExpectSP() || !dec.ExpectNumber64(&limit) {
			return dec.Err()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if _, err := c.quotaSession(); err != nil {
		return err
	}
	return &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeNoPerm,
		Text: "Quotas cannot be set over IMAP",
	}
}

func (c *Conn) quotaSession() (SessionQuota, error) {
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return nil, err
	}
	session, ok := c.session.(SessionQuota)
	if !ok {
		return nil, newClientBugError("QUOTA is not supported")
	}
	return session, nil
}

func writeQuota(enc *imapwire.Encoder, data *QuotaData) error {
	enc.Atom("*").SP().Atom("QUOTA").SP().String(data.Root).SP()
	enc.List(len(data.Resources), func(i int) {
		r := data.Resources[i]
		enc.Atom(string(r.Type)).SP().Number64(r.Usage).SP().Number64(r.Limit)
	})
	return enc.CRLF()
}
