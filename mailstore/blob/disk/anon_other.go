//go:build !linux

package disk

import (
	"errors"
	"os"
)

var errNoAnon = errors.New("unnamed files need Linux's O_TMPFILE")

func createAnon(dir string) (*os.File, error) { return nil, errNoAnon }
func linkAnon(f *os.File, path string) error  { return errNoAnon }
func anonWorks(dir string) error              { return errNoAnon }
