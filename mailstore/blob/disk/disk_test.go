package disk_test

import (
	"testing"

	"sealmail/mailstore"
	"sealmail/mailstore/blob/disk"
	"sealmail/mailstore/storetest"
)

func TestContract(t *testing.T) {
	storetest.RunBlobs(t, func(t *testing.T) mailstore.BlobStore {
		s, err := disk.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
