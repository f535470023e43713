// Package blob holds what the mail store and its blob stores (disk, and
// later object stores) share, so that a blob store need not import the store.
package blob

import "errors"

// Ref names one stored copy of a content: its SHA-256, and where the blob
// store put it. Loc is what Put returned: empty for a store that finds
// content by its sum alone, a place (a pack file and an offset, say) for one
// that does not. Two Puts of the same content may return different places.
type Ref struct {
	Sum [32]byte
	Loc string
}

// ErrCorrupt says stored content is damaged: its record is not what was
// written there. Missing content is reported with fs.ErrNotExist instead.
var ErrCorrupt = errors.New("message content damaged in the blob store")
