package mailstore_test

import (
	"errors"
	"testing"

	"sealmail/mailstore"
)

func TestCheckNames(t *testing.T) {
	for _, c := range []struct {
		address string
		ok      bool
	}{
		{"a@agency.example", true},
		{"Nguyen.Van-A+tag@so.example", true},
		{"o'brien@x.test", true},
		{"nguyễn.văn.a@so.example", true}, // Latin with Vietnamese marks, NFC
		{"đặng.thị.hương@so.example", true},
		{"иван@x.test", true},   // Cyrillic throughout
		{"αλφα2@x.test", true},  // Greek throughout, a digit
		{"аdmin@x.test", false}, // Cyrillic а + Latin
		{"admіn@x.test", false}, // Ukrainian і
		{"pαypal@x.test", false},
		{"ngu\u00ea\u0303n@x.test", false}, // not NFC
		{"../../etc@x.test", false},
		{"a/b@x.test", false},
		{"a\\b@x.test", false},
		{".a@x.test", false},
		{"a.@x.test", false},
		{"a..b@x.test", false},
		{"\"quoted\"@x.test", false},
		{"a\x00b@x.test", false},
		{"a\u200bb@x.test", false}, // zero-width space
		{"a@../etc", false},
		{"a@-x.test", false},
		{"a@x..test", false},
		{"a@x_y.test", false},
		{"a@sở.vn", true}, // kept as its A-label, xn--s-lym.vn
		{"a@xn--s-6ea.vn", true},
		{"a@sở\u200d.vn", false}, // a joiner IDNA refuses
	} {
		err := mailstore.CheckAddress(c.address)
		if (err == nil) != c.ok {
			t.Errorf("CheckAddress(%q) = %v, want ok %v", c.address, err, c.ok)
		}
		if err != nil && !errors.Is(err, mailstore.ErrInvalid) {
			t.Errorf("CheckAddress(%q) = %v, not ErrInvalid", c.address, err)
		}
	}
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	if mailstore.CheckLocalPart(string(long)) == nil {
		t.Error("a 65-octet local part was accepted")
	}
	if err := mailstore.CheckDomain("../etc"); err == nil || err.Error() != `domain "../etc" contains '/'; a domain has only letters, digits, '-' and '.'` {
		t.Errorf("CheckDomain(../etc) = %v", err)
	}
}
