package imapserver

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

func (c *Conn) handleCapability(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("CAPABILITY")
	for _, c := range c.availableCaps() {
		enc.SP().Atom(string(c))
	}
	return enc.CRLF()
}

// availableCaps returns the capabilities supported by the server.
//
// They depend on the connection state.
//
// Some extensions (e.g. SASL-IR, ENABLE) don't require backend support and
// thus are always enabled.
func (c *Conn) availableCaps() []imap.Cap {
	available := c.server.options.caps()

	var caps []imap.Cap
	addAvailableCaps(&caps, available, []imap.Cap{
		imap.CapIMAP4rev2,
		imap.CapIMAP4rev1,
	})
	if len(caps) == 0 {
		panic("imapserver: must support at least IMAP4rev1 or IMAP4rev2")
	}

	if available.Has(imap.CapIMAP4rev1) {
		caps = append(caps, imap.CapSASLIR)
		// sealmail: LITERAL+ (when offered) before login too, and LITERAL-
		// only without it: LITERAL+ includes it (RFC 7888).
		if available.Has(imap.CapLiteralPlus) {
			caps = append(caps, imap.CapLiteralPlus)
		} else {
			caps = append(caps, imap.CapLiteralMinus)
		}
		// sealmail: what needs no account is advertised before login as
		// well, as Dovecot does: clients such as Python's imaplib read the
		// list once, before login, and never see the one in LOGIN's OK.
		caps = append(caps, imap.CapEnable, imap.CapIdle, imap.CapUTF8Accept)
	} else {
		addAvailableCaps(&caps, available, []imap.Cap{imap.CapLiteralPlus})
	}
	// sealmail: ID is valid in any state; the protocol extensions below
	// reveal nothing about accounts either.
	addAvailableCaps(&caps, available, preAuthCaps)
	if c.canStartTLS() {
		caps = append(caps, imap.CapStartTLS)
	}
	if c.canAuth() {
		mechs := []string{"PLAIN"}
		if authSess, ok := c.session.(SessionSASL); ok {
			mechs = authSess.AuthenticateMechanisms()
		}
		for _, mech := range mechs {
			caps = append(caps, imap.Cap("AUTH="+mech))
		}
	} else if c.state == imap.ConnStateNotAuthenticated {
		caps = append(caps, imap.CapLoginDisabled)
	}
	if c.state == imap.ConnStateAuthenticated || c.state == imap.ConnStateSelected {
		if available.Has(imap.CapIMAP4rev1) {
			// IMAP4rev1-specific capabilities that don't require backend
			// support and are not applicable to IMAP4rev2
			caps = append(caps, imap.CapUnselect)

			// IMAP4rev1-specific capabilities which require backend support
			// and are not applicable to IMAP4rev2
			addAvailableCaps(&caps, available, []imap.Cap{
				imap.CapNamespace,
				imap.CapUIDPlus,
				imap.CapESearch,
				imap.CapSearchRes,
				imap.CapListExtended,
				imap.CapListStatus,
				imap.CapMove,
				imap.CapStatusSize,
				imap.CapBinary,
				imap.CapChildren,
			})
		}

		// Capabilities which require backend support and apply to both
		// IMAP4rev1 and IMAP4rev2
		addAvailableCaps(&caps, available, []imap.Cap{
			imap.CapSpecialUse,
			imap.CapCreateSpecialUse,
		})

		// sealmail: QUOTA and the resources it reports.
		addAvailableCaps(&caps, available, []imap.Cap{
			imap.CapQuota,
			imap.Cap("QUOTA=RES-" + imap.QuotaResourceStorage),
			imap.Cap("QUOTA=RES-" + imap.QuotaResourceMessage),
			imap.Cap("QUOTA=RES-" + imap.QuotaResourceMailbox),
			imap.Cap("QUOTA=RES-" + imap.QuotaResourceAnnotationStorage),
		})

		if appendLimitSession, ok := c.session.(SessionAppendLimit); ok {
			limit := appendLimitSession.AppendLimit()
			caps = append(caps, imap.Cap(fmt.Sprintf("APPENDLIMIT=%d", limit)))
		} else {
			addAvailableCaps(&caps, available, []imap.Cap{imap.CapAppendLimit})
		}
	}
	return caps
}

// preAuthCaps are advertised in every state when the server offers them.
var preAuthCaps = []imap.Cap{
	imap.CapID,
	imap.CapUnauthenticate,
	imap.CapCondStore,
	imap.CapQResync,
	imap.CapSort,
	imap.CapSortDisplay,
	imap.Cap("THREAD=" + imap.ThreadReferences),
	imap.Cap("THREAD=" + imap.ThreadOrderedSubject),
}

func addAvailableCaps(caps *[]imap.Cap, available imap.CapSet, l []imap.Cap) {
	for _, c := range l {
		if available.Has(c) {
			*caps = append(*caps, c)
		}
	}
}
