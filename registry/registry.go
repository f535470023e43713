// Package registry is an agency's document registry (văn thư): it numbers
// and seals official documents on the way out, verifies and registers them
// on the way in, and keeps the evidence of every exchange, as Decree
// 30/2020/NĐ-CP asks of a registry clerk. Sealing and verifying themselves
// are package signing's; registers and evidence live in the mail store.
//
// # Documents
//
// Each hosted domain is an agency (mailstore.Domain: OrganID, OrganName,
// Code, OfficialAddress) with a seal under DataDir/seal/DOMAIN (see SealDir).
// A message is an official document when a clerk account submits it From:
// the agency's official address with at least one attachment. A clerk who
// writes From: their own address sends ordinary mail: the official address
// is an alias the clerks own, and choosing it is how a clerk releases a
// document. Messages from other accounts are never sealed.
//
// # Contract with the SMTP server
//
// On submission, after the sender's right to its From: address is checked
// and before anything is stored or queued, call Outgoing with the local and
// remote recipients. It returns nil when the message is not an official
// document (deliver it as usual); otherwise it gives the document the next
// number of the agency's outgoing register, stamps it, and in one store
// transaction registers it, files the stamped copy in the clerk's "Văn bản
// đi" folder, puts a signed SubmissionAcceptance receipt in the clerk's
// INBOX, delivers it to the local recipients (through their agencies'
// incoming registers, as Incoming would) and queues it for the remote ones;
// it returns the stamped message and the server has nothing left to do. An
// error wrapping ErrRejected is permanent (reply 5xx with its text); any
// other error is temporary (4xx), and nothing was registered, delivered or
// queued. The same message submitted again is not released twice.
//
// For every message to local recipients (from the MX port, and the stamped
// result of Outgoing for hosted agencies), call Incoming before delivering,
// with the local recipient addresses and the Targets the server would
// deliver to. If it reports handled, the registry has delivered the message
// itself (or a quarantine notice in its place) and the server must not; if
// not, the server delivers as usual. Incoming handles a message that carries
// Official-Document-Id or Official-Document (a document, or a claim to be
// one) and one that carries Official-Document-Receipt (a receipt from a
// peer). A document that verifies is registered under the next incoming
// number, marked with an Official-Document: pass field above the signed
// part, delivered to the recipients and to every clerk's "Văn bản đến", and
// answered with a ContentConsignment receipt; one that fails is registered
// nowhere, reaches the recipients only as a notice in "Cách ly" naming the
// failed checks, and is answered with a ContentConsignmentFailure receipt.
// Receipts go only to agencies this server knows (hosted domains and peers
// with a seal CA), so forged mail causes no backscatter.
//
// # One step, one transaction
//
// Each step — a release, an arrival, a receipt filed — is built first
// (verifying, sealing, signing receipts: no writes) and then committed in
// one store transaction (mailstore.CommitDoc, see step.go): its register
// lines, the copies delivered, the receipts queued for other servers (or
// filed at once for agencies hosted here), the evidence and the
// acknowledgements. After a crash at any point a document is either
// registered, delivered and answered, or none of these; the sender retries
// and the step is done then, once: a message already registered, or a
// receipt already recorded, is not handled again. Register numbers are
// taken in the commit: a step whose number was taken meanwhile is built
// again with the next one.
//
// Every receipt issued or received is appended to the store's hash-chained
// evidence.
package registry

import (
	"crypto/x509"
	"errors"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"sealmail/mailstore"
	"sealmail/signing"
)

// Folders the registry delivers to; Deliver creates them when missing.
const (
	OutFolder        = "Văn bản đi"
	InFolder         = "Văn bản đến"
	QuarantineFolder = "Cách ly"
)

// Register statuses.
const (
	StatusNumbered = "numbered" // number taken, not yet sealed
	StatusSent     = "sent"     // sealed and handed over for delivery
	StatusVoid     = "void"     // could not be sealed; the number stays used
	StatusReceived = "received" // verified, registered and delivered
)

// Queue is the outbound queue (relay.Queue). The registry queues what it
// sends in the store, in the same transaction as the rest of each step, and
// then wakes the queue.
type Queue interface {
	Wake()
}

// ErrRejected marks a document the registry refuses for good: sending it
// again unchanged fails the same way.
var ErrRejected = errors.New("official document rejected")

// ICT is Indochina Time (UTC+7), Vietnam's only time zone, fixed so that the
// registry needs no time zone database.
var ICT = time.FixedZone("ICT", 7*60*60)

// Registry keeps the registers of the agencies hosted in one store.
type Registry struct {
	Store   *mailstore.Store
	DataDir string // holds seal/DOMAIN/ and seal/crl/
	// Hostname names this server in the evidence of receipts.
	Hostname string
	// Queue delivers what the registry queues for agencies on other
	// servers (the outbound relay); what is for agencies hosted here is filed
	// at once.
	Queue  Queue
	Logger *slog.Logger     // nil means slog.Default()
	Now    func() time.Time // nil means time.Now
	// Location is where dates are read and registers roll over to a new
	// year; nil means ICT.
	Location *time.Location
	// Timestamper, if set, timestamps every document and receipt sealed
	// here (RFC 3161). When it fails, Outgoing fails temporarily.
	Timestamper signing.Timestamper
	// TSARoots are the time-stamping authorities trusted to date the
	// documents and receipts that arrive (signing.VerifyOptions.TSARoots).
	TSARoots *x509.CertPool
	// OCSP asks the responders named in seal certificates; nil checks CRLs only.
	OCSP signing.OCSPFetcher
	// PDF is the policy for the PDF files of official documents.
	PDF PDFPolicy
	// RequireEdXMLSignature refuses (quarantines, answering 02) edXML
	// packages and status messages without an XML-DSig signature
	// (documents.require-edxml-signature). Off by default: hubs commonly
	// send packages unsigned, whose PDF files carry the legal signatures.
	RequireEdXMLSignature bool
	// Counted, if set, is told of every document released here ("stamped":
	// "ok", or "refused" for a release refused, ErrRejected) and of every
	// one that arrived ("verified": "pass" or "fail"): monitoring.
	Counted func(action, result string)

	retryMu sync.Mutex // steps built again for a number taken meanwhile (run)
}

func (r *Registry) count(action, result string) {
	if r.Counted != nil {
		r.Counted(action, result)
	}
}

// PDFPolicy is how the registry signs and checks the PDF files inside
// official documents (Decree 30/2020 Art. 5.1, 14, 21.2.a, Appendix I).
// Its zero value is the safe default.
type PDFPolicy struct {
	// Profile is the PDF signature profile: signing.ProfilePKCS7 (the
	// default, as the national CA's tools sign) or signing.ProfilePAdES.
	Profile string
	// AllowUnsigned releases and accepts a main PDF that carries no valid
	// signature of the person with authority
	// (documents.require-signer-signature = false).
	AllowUnsigned bool
	// TrustRoots are the national roots signers' certificates chain to
	// (documents.trust-roots); a seal chains to its agency's seal CA.
	TrustRoots []*x509.Certificate
}

// trustPool returns the trust roots as a pool, nil when there are none.
func (p PDFPolicy) trustPool() *x509.CertPool {
	if len(p.TrustRoots) == 0 {
		return nil
	}
	pool := x509.NewCertPool()
	for _, c := range p.TrustRoots {
		pool.AddCert(c)
	}
	return pool
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// seal loads a hosted domain's seal, set to timestamp its signatures.
func (r *Registry) seal(domain string) (*signing.Seal, error) {
	s, err := LoadSeal(r.DataDir, domain)
	if err != nil {
		return nil, err
	}
	s.Timestamper = r.Timestamper
	return s, nil
}

func (r *Registry) loc() *time.Location {
	if r.Location != nil {
		return r.Location
	}
	return ICT
}

func (r *Registry) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// domainOf returns the lower-case domain of an address, or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// normID writes a Message-ID one way, "<id>", whatever spacing it came with.
func normID(id string) string {
	id = strings.Trim(strings.TrimSpace(id), "<>")
	if id == "" {
		return ""
	}
	return "<" + id + ">"
}

// singleFrom returns the one address of a From: field, or "".
func singleFrom(v string) string {
	list, err := addressParser.ParseList(v)
	if err != nil || len(list) != 1 {
		return ""
	}
	return strings.ToLower(list[0].Address)
}

// addressParser reads addresses whatever charset their display names use:
// only the addresses matter here.
var addressParser = mail.AddressParser{WordDecoder: wordDecoder}
