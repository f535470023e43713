package mailstore_test

import (
	"testing"

	"sealmail/mailstore"
	"sealmail/mailstore/storetest"
)

func openTest(t *testing.T) *mailstore.Store {
	s, err := mailstore.Open(t.TempDir(), mailstore.Options{PasswordParams: &mailstore.CheapPasswordParams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) { storetest.Run(t, openTest) }
