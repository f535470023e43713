package imapserver

// sealmail: this file adds the server side of ID (RFC 2971), which upstream
// lacks.

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

func (c *Conn) handleID(dec *imapwire.Decoder) error {
	var client imap.IDData
	fields := idFields(&client)
	if !dec.ExpectSP() {
		return dec.Err()
	}
	err := dec.ExpectNList(func() error {
		var key, value string
		if !dec.ExpectString(&key) || !dec.ExpectSP() || !dec.ExpectNString(&value) {
			return dec.Err()
		}
		// Field names are case-insensitive; unknown ones are allowed and
		// ignored, as imapclient does.
		for _, f := range fields {
			if strings.EqualFold(f.key, key) {
				*f.value = value
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	session, ok := c.session.(SessionID)
	if !ok {
		return newClientBugError("ID is not supported")
	}
	server := session.ID(&client)

	var pairs []string
	if server != nil {
		for _, f := range idFields(server) {
			if *f.value != "" {
				pairs = append(pairs, f.key, *f.value)
			}
		}
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ID").SP()
	if len(pairs) == 0 {
		enc.NIL()
	} else {
		enc.List(len(pairs), func(i int) {
			enc.String(pairs[i])
		})
	}
	return enc.CRLF()
}

type idField struct {
	key   string
	value *string
}

// idFields lists the fields of data under their RFC 2971 names, in the order
// imapclient sends them.
func idFields(data *imap.IDData) []idField {
	return []idField{
		{"name", &data.Name},
		{"version", &data.Version},
		{"os", &data.OS},
		{"os-version", &data.OSVersion},
		{"vendor", &data.Vendor},
		{"support-url", &data.SupportURL},
		{"address", &data.Address},
		{"date", &data.Date},
		{"command", &data.Command},
		{"arguments", &data.Arguments},
		{"environment", &data.Environment},
	}
}
