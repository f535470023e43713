package book

import (
	"slices"
	"strings"

	"sealmail/mailstore"
)

// Filter selects the lines of a register a clerk looks for. Every
// comparison ignores case and Vietnamese marks (mailstore.Fold: "Sở Tài
// chính" is "so tai chinh", đ is d), so a clerk may type without them.
// Zero fields match every line.
type Filter struct {
	// Agency is the other side: the issuing organ (tác giả) of a document
	// received, one of the places (nơi nhận) a document was sent to.
	Agency string
	// Type is the document type (tên loại); "-" selects lines without one.
	Type string
	// Text must occur in the line, word by word in any column the register
	// prints: notation, abstract, signer, organ, places, notes, ...
	Text string
}

// NoType is the Type that selects lines registered without a document type.
const NoType = "-"

// Match reports whether e is selected.
func (f Filter) Match(e mailstore.DocEntry) bool {
	if a := mailstore.Fold(strings.TrimSpace(f.Agency)); a != "" &&
		!slices.ContainsFunc(agencies(e), func(v string) bool { return mailstore.Fold(v) == a }) {
		return false
	}
	switch t := strings.TrimSpace(f.Type); t {
	case "":
	case NoType:
		if strings.TrimSpace(e.DocType) != "" {
			return false
		}
	default:
		if mailstore.Fold(e.DocType) != mailstore.Fold(t) {
			return false
		}
	}
	words := strings.Fields(mailstore.Fold(f.Text))
	if len(words) == 0 {
		return true
	}
	text := mailstore.Fold(strings.Join(append([]string{e.Notation, e.DocType, e.Subject, e.Signer, e.Organ, e.Sender,
		e.FiledWith, e.Notes, e.DocumentID, e.DocDate, docDate(e.DocDate)}, e.Recipients...), "\n"))
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// Select returns the lines of entries f matches, in their order.
func (f Filter) Select(entries []mailstore.DocEntry) []mailstore.DocEntry {
	var out []mailstore.DocEntry
	for _, e := range entries {
		if f.Match(e) {
			out = append(out, e)
		}
	}
	return out
}

// agencies are the values Filter.Agency is compared with.
func agencies(e mailstore.DocEntry) []string {
	if e.Direction == mailstore.DocIn {
		return []string{e.Organ}
	}
	return e.Recipients
}

// Agencies returns the agencies the lines name, once each, in the order of
// their folded spelling: the choices of Filter.Agency.
func Agencies(entries []mailstore.DocEntry) []string {
	var all []string
	for _, e := range entries {
		all = append(all, agencies(e)...)
	}
	return distinct(all)
}

// Types returns the document types the lines name, once each, in the order
// of their folded spelling: the choices of Filter.Type (besides NoType).
func Types(entries []mailstore.DocEntry) []string {
	var all []string
	for _, e := range entries {
		all = append(all, e.DocType)
	}
	return distinct(all)
}

// distinct keeps the non-empty values, one per folded spelling (the first
// seen), sorted by it.
func distinct(vs []string) []string {
	seen := map[string]string{}
	for _, v := range vs {
		v = strings.TrimSpace(v)
		k := mailstore.Fold(v)
		if _, ok := seen[k]; !ok && v != "" {
			seen[k] = v
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out
}
