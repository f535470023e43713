package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"sealmail/mailauth"
)

var dkimCmd = &command{name: "dkim", short: "manage DKIM signing keys", sub: []*command{
	{name: "keygen", short: "create a DKIM key for a domain and print its DNS record", run: dkimKeygen},
}}

// dkimDir is where DKIM keys live inside the data directory.
const dkimDir = "dkim"

func dkimKeygen(ctx context.Context, args []string) error {
	f := newFlags("dkim keygen", "DOMAIN [--selector S]")
	sel := f.String("selector", mailauth.DefaultSelector, "DKIM `selector` (letters, digits, hyphens)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if err := needSetup(*f.data); err != nil {
		return err
	}
	name, value, err := mailauth.GenerateKey(filepath.Join(*f.data, dkimDir), pos[0], *sel)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("a key for %s with selector %s exists; choose another --selector to rotate", pos[0], *sel)
	}
	if err != nil {
		return err
	}
	fmt.Printf("created %s\nPublish this DNS record; outgoing mail from %s is signed from now on:\n\n%s\n",
		mailauth.KeyPath(filepath.Join(*f.data, dkimDir), pos[0], *sel), pos[0], mailauth.ZoneRecord(name, value))
	return nil
}
