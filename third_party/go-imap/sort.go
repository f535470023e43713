package imap

// sealmail: SORT (RFC 5256, RFC 5957) on the server side.

// SortKey is a SORT criterion's key.
type SortKey string

const (
	SortKeyArrival     SortKey = "ARRIVAL"
	SortKeyCc          SortKey = "CC"
	SortKeyDate        SortKey = "DATE"
	SortKeyFrom        SortKey = "FROM"
	SortKeySize        SortKey = "SIZE"
	SortKeySubject     SortKey = "SUBJECT"
	SortKeyTo          SortKey = "TO"
	SortKeyDisplayFrom SortKey = "DISPLAYFROM" // RFC 5957
	SortKeyDisplayTo   SortKey = "DISPLAYTO"   // RFC 5957
)

// SortCriterion is one key of a SORT command, in the order given.
type SortCriterion struct {
	Key     SortKey
	Reverse bool
}

// ThreadData is one thread of a THREAD response: Chain holds messages each
// the only child of the one before, SubThreads the branches after the last.
// A thread whose root is missing has an empty Chain.
type ThreadData struct {
	Chain      []uint32
	SubThreads []ThreadData
}
