package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	"sealmail/config"
	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/signing"
)

var docCmd = &command{name: "doc", short: "official documents: verify, registers, status", sub: []*command{
	{name: "verify", short: "check a stamped document (.eml) offline and print every check", run: docVerify},
	{name: "register", short: "the registers of documents sent and received", sub: []*command{
		{name: "list", short: "list a register (sổ đi or sổ đến) for a year", run: docRegisterList},
		{name: "add", short: "record a paper document in a register, under the next number", run: docRegisterAdd},
		{name: "export", short: "write a year's register as Appendix IV lays it out: PDF (A4, to print and bind), CSV or XLSX", run: docRegisterExport},
	}},
	{name: "status", short: "show a document's register entries, every status received or sent, and the evidence", run: docStatus},
	{name: "recall", short: "recall a document released here: every recipient agency withdraws it (status 13, answered 15/16)", run: docRecall},
	{name: "return", short: "return a document received today to its sender (status 02)", run: docReturn},
	{name: "update", short: "release a document that corrects one released here (đính chính), linked to it", run: docUpdate},
	{name: "replace", short: "release a document that replaces one released here (thay thế), linked to it", run: docReplace},
	{name: "state", short: "report how far a received document is processed: assigned, processing, done (04/05/06)", run: docState},
	{name: "export", short: "write a document as an edXML package (QCVN 102:2016), or its status messages", run: docExport},
	{name: "import", short: "receive an edXML package: verify, register and deliver it", run: docImport},
}}

func docVerify(ctx context.Context, args []string) error {
	f := newFlags("doc verify", "FILE.eml [--ca FILE.pem] [--crl FILE] [--json]\n\n"+
		"Without --ca the seal CA configured for the From: domain is used: a hosted\n"+
		"domain's own, or a peer's ('sealmail peer add DOMAIN --seal-ca FILE').\n"+
		"Exits 1 unless the document verifies.")
	caFile := f.String("ca", "", "PEM `FILE` of the CA to trust for the From: domain, instead of the configured one")
	crlFile := f.String("crl", "", "CRL `FILE` (PEM or DER) to check the seal against, besides any configured")
	asJSON := f.Bool("json", false, "print JSON")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	msg, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("%s: not a mail message: %w", pos[0], err)
	}
	from, err := mail.ParseAddress(m.Header.Get("From"))
	if err != nil {
		return fmt.Errorf("%s: From: %w", pos[0], err)
	}
	domain := strings.ToLower(from.Address[strings.LastIndexByte(from.Address, '@')+1:])
	var opts signing.VerifyOptions
	if *caFile == "" {
		s, err := open(*f.data)
		if err != nil {
			return fmt.Errorf("%w\n(or give the CA with --ca FILE.pem)", err)
		}
		defer s.Close()
		r, err := docRegistry(*f.data, s)
		if err != nil {
			return err
		}
		if opts, err = r.VerifyOptions(ctx, domain); err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		certs, err := signing.ParseCertsPEM(b)
		if err != nil {
			return fmt.Errorf("--ca: %s: %w", *caFile, err)
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		opts.Roots = map[string]*x509.CertPool{domain: pool}
	}
	if *crlFile != "" {
		crls, err := registry.ReadCRLs(*crlFile)
		if err != nil {
			return fmt.Errorf("--crl: %w", err)
		}
		opts.CRLs = append(opts.CRLs, crls...)
	}
	res, verr := signing.Verify(msg, opts)
	if *asJSON {
		if err := printJSON(res); err != nil {
			return err
		}
	} else {
		fmt.Print(res.String())
	}
	if verr != nil {
		return fmt.Errorf("%s does not verify: %w", pos[0], verr)
	}
	return nil
}

// docRegistry is the registry of the data directory dir for a command run
// beside the server: what it queues the server's relay sends.
func docRegistry(dir string, s *mailstore.Store) (*registry.Registry, error) {
	c, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	tsaRoots, err := c.TSARoots()
	if err != nil {
		return nil, err
	}
	policy, err := pdfPolicy(c)
	if err != nil {
		return nil, err
	}
	// What was done is printed; the log says only what went wrong.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := &registry.Registry{Store: s, DataDir: dir, Hostname: c.Hostname, TSARoots: tsaRoots, OCSP: signing.HTTPOCSP{}, PDF: policy, Logger: quiet,
		RequireEdXMLSignature: c.Documents.RequireEdXMLSignature}
	if c.Documents.TSAURL != "" {
		r.Timestamper = &signing.TSAClient{URL: c.Documents.TSAURL, HTTPClient: &http.Client{Timeout: tsaTimeout}, Roots: tsaRoots}
	}
	return r, nil
}

// docJSON is a register entry in 'doc register list --json' and 'doc status
// --json'; scripts rely on its keys, which are also the CSV columns.
type docJSON struct {
	Domain     string              `json:"domain"`
	Register   string              `json:"register"` // out or in
	Year       int                 `json:"year"`
	Number     int                 `json:"number"`   // số (out) or số đến (in)
	Notation   string              `json:"notation"` // số/ký hiệu
	DocDate    string              `json:"doc_date"`
	Registered time.Time           `json:"registered"` // sent (out) or received (in)
	Subject    string              `json:"subject"`
	Signer     string              `json:"signer"`
	Organ      string              `json:"organ"`
	Sender     string              `json:"sender"`
	Recipients []string            `json:"recipients"`
	Copies     int                 `json:"copies"`
	Status     string              `json:"status"`
	Acks       []mailstore.DocAck  `json:"acks"`
	Notes      string              `json:"notes"`
	DocumentID string              `json:"document_id"`
	MessageID  string              `json:"message_id"`
	Files      []mailstore.DocFile `json:"files"`
	Series     string              `json:"series"` // "" or "mat" (confidential)
	Medium     string              `json:"medium"` // electronic or paper
	DocType    string              `json:"doc_type"`
	FiledWith  string              `json:"filed_with"`
	Relation   string              `json:"relation"` // "", updates or replaces
	Related    string              `json:"related"`  // the DocumentId it updates or replaces
}

func toJSON(e mailstore.DocEntry) docJSON {
	return docJSON{e.Domain, string(e.Direction), e.Year, e.Number, e.Notation, e.DocDate, e.Time.In(registry.ICT), e.Subject,
		e.Signer, e.Organ, e.Sender, e.Recipients, e.Copies, e.Status, e.Acks, e.Notes, e.DocumentID, e.MessageID, e.Files,
		e.Series, e.Medium, e.DocType, e.FiledWith, e.Relation, e.Related}
}

var docCSVHeader = []string{"domain", "register", "year", "number", "notation", "doc_date", "registered", "subject", "signer",
	"organ", "sender", "recipients", "copies", "status", "acks", "notes", "document_id", "message_id", "files",
	"series", "medium", "doc_type", "filed_with", "relation", "related"}

func (d docJSON) csv() []string {
	var files []string
	for _, f := range d.Files {
		files = append(files, f.Name+" sha256:"+f.SHA256)
	}
	return []string{d.Domain, d.Register, strconv.Itoa(d.Year), strconv.Itoa(d.Number), d.Notation, d.DocDate,
		d.Registered.Format(time.RFC3339), d.Subject, d.Signer, d.Organ, d.Sender, strings.Join(d.Recipients, ", "),
		strconv.Itoa(d.Copies), d.Status, acksText(d.Acks), d.Notes, d.DocumentID, d.MessageID, strings.Join(files, "; "),
		d.Series, d.Medium, d.DocType, d.FiledWith, d.Relation, d.Related}
}

// acksText is the acknowledgement column: "01 vanthu@b (2026-11-28 09:31); ...".
func acksText(acks []mailstore.DocAck) string {
	var out []string
	for _, a := range acks {
		s := a.StatusCode + " " + a.Party
		if a.Reason != "" {
			s += " [" + a.Reason + "]"
		}
		out = append(out, s+" ("+a.Time.In(registry.ICT).Format("2006-01-02 15:04")+")")
	}
	return strings.Join(out, "; ")
}

func docRegisterList(ctx context.Context, args []string) error {
	f := newFlags("doc register list", "--outgoing|--incoming [--year Y] [--domain D] [--json|--csv]")
	out := f.Bool("outgoing", false, "the register of documents sent (sổ văn bản đi)")
	in := f.Bool("incoming", false, "the register of documents received (sổ văn bản đến)")
	year := f.Int("year", time.Now().In(registry.ICT).Year(), "the `YEAR` (default this year)")
	domain := f.String("domain", "", "only this `DOMAIN`'s register (default every hosted domain)")
	asJSON := f.Bool("json", false, "print JSON")
	asCSV := f.Bool("csv", false, "print CSV, for spreadsheets")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *out == *in {
		return f.errorf("give one of --outgoing and --incoming")
	}
	if *asJSON && *asCSV {
		return f.errorf("give at most one of --json and --csv")
	}
	dir := mailstore.DocOut
	if *in {
		dir = mailstore.DocIn
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	es, err := s.Docs(ctx, mailstore.DocQuery{Domain: *domain, Direction: dir, Year: *year})
	if err != nil {
		return err
	}
	rows := make([]docJSON, len(es))
	for i, e := range es {
		rows[i] = toJSON(e)
	}
	switch {
	case *asJSON:
		return printJSON(rows)
	case *asCSV:
		w := csv.NewWriter(os.Stdout)
		w.Write(docCSVHeader)
		for _, r := range rows {
			w.Write(r.csv())
		}
		w.Flush()
		return w.Error()
	}
	if dir == mailstore.DocOut {
		return printTable("DOMAIN\tSỐ/KÝ HIỆU\tNGÀY\tTRÍCH YẾU\tNƠI NHẬN\tNGÀY GỬI\tTÌNH TRẠNG\tXÁC NHẬN", rows, func(r docJSON) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Domain, r.Notation, r.DocDate, r.Subject,
				strings.Join(r.Recipients, ", "), r.Registered.Format("2006-01-02 15:04"), r.Status, acksText(r.Acks))
		})
	}
	return printTable("DOMAIN\tSỐ ĐẾN\tNGÀY ĐẾN\tCƠ QUAN BAN HÀNH\tSỐ/KÝ HIỆU\tNGÀY VB\tTRÍCH YẾU\tNƠI NHẬN\tXÁC NHẬN", rows, func(r docJSON) string {
		return fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Domain, r.Number, r.Registered.Format("2006-01-02 15:04"),
			r.Organ, r.Notation, r.DocDate, r.Subject, strings.Join(r.Recipients, ", "), acksText(r.Acks))
	})
}

// statusJSON is 'doc status --json'.
type statusJSON struct {
	DocumentID string               `json:"document_id"`
	Entries    []entryStatusJSON    `json:"entries"`
	Evidence   []mailstore.Evidence `json:"evidence"`
	Chain      chainJSON            `json:"chain"`
}

// entryStatusJSON is a register line with every status its agency sent or
// received for it.
type entryStatusJSON struct {
	docJSON
	Statuses []registry.Status `json:"statuses"`
}

type chainJSON struct {
	OK    bool   `json:"ok"`
	Rows  int    `json:"rows"`
	Head  string `json:"head,omitempty"`
	Error string `json:"error,omitempty"`
}

func docStatus(ctx context.Context, args []string) error {
	f := newFlags("doc status", "DOCUMENT-ID [--json]\n\n"+
		"DOCUMENT-ID is the edXML DocumentId, e.g. '000.00.12.H10,2026/11/28,01/STTTT-VP'\n"+
		"(the Official-Document-Id field of the message). Exits 1 if the evidence\n"+
		"chain does not verify.")
	asJSON := f.Bool("json", false, "print JSON")
	pos, s, err := f.parseOpen(args, 1, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	es, err := s.Docs(ctx, mailstore.DocQuery{DocumentID: pos[0]})
	if err != nil {
		return err
	}
	evs, err := s.Evidence(ctx, mailstore.EvidenceQuery{DocumentID: pos[0]})
	if err != nil {
		return err
	}
	if len(es) == 0 && len(evs) == 0 {
		return fmt.Errorf("no document %s in any register or evidence here; see 'sealmail doc register list'", pos[0])
	}
	st := statusJSON{DocumentID: pos[0], Entries: make([]entryStatusJSON, len(es)), Evidence: evs}
	r, err := docRegistry(*f.data, s)
	if err != nil {
		return err
	}
	for i, e := range es {
		sts, err := r.Statuses(ctx, e)
		if err != nil {
			return err
		}
		st.Entries[i] = entryStatusJSON{toJSON(e), sts}
	}
	rows, head, chainErr := s.VerifyEvidence(ctx)
	if chainErr != nil && !errors.Is(chainErr, mailstore.ErrEvidenceBroken) {
		return chainErr
	}
	st.Chain = chainJSON{OK: chainErr == nil, Rows: rows, Head: head}
	if chainErr != nil {
		st.Chain.Error = chainErr.Error()
	}
	if *asJSON {
		if err := printJSON(st); err != nil {
			return err
		}
	} else {
		printStatus(st)
	}
	return chainErr
}

func printStatus(st statusJSON) {
	fmt.Printf("document %s\n", st.DocumentID)
	for _, e := range st.Entries {
		kind := "sent (sổ đi)"
		if e.Register == string(mailstore.DocIn) {
			kind = "received (sổ đến)"
		}
		fmt.Printf("\n%s by %s: number %d/%d, %s, registered %s, status %s\n", kind, e.Domain, e.Number, e.Year, e.Notation,
			e.Registered.Format("2006-01-02 15:04:05"), e.Status)
		fmt.Printf("  subject: %s\n  sender: %s; recipients: %s\n", e.Subject, e.Sender, strings.Join(e.Recipients, ", "))
		for _, a := range e.Acks {
			fmt.Printf("  acknowledged %s by %s at %s", a.StatusCode, a.Party, a.Time.In(registry.ICT).Format("2006-01-02 15:04:05"))
			if a.Reason != "" {
				fmt.Printf(": %s", a.Reason)
			}
			fmt.Println()
		}
		if e.Notes != "" {
			fmt.Printf("  notes: %s\n", e.Notes)
		}
		printStatuses(e.Statuses)
	}
	fmt.Printf("\nevidence:\n")
	printTable("  #\tTIME\tORIGIN\tEVENT\tSTATUS\tFROM\tHASH", st.Evidence, func(ev mailstore.Evidence) string {
		status := ev.StatusCode
		if ev.Reason != "" {
			status = strings.TrimSpace(status + " " + ev.Reason)
		}
		return fmt.Sprintf("  %d\t%s\t%s\t%s\t%s\t%s\t%.16s", ev.ID, ev.Time.In(registry.ICT).Format("2006-01-02 15:04:05"),
			ev.Origin, ev.Event, status, ev.Sender, ev.Hash)
	})
	if st.Chain.OK {
		fmt.Printf("\nevidence chain intact: %d rows, head %s\n", st.Chain.Rows, st.Chain.Head)
	} else {
		fmt.Printf("\nEVIDENCE CHAIN BROKEN: %s\n", st.Chain.Error)
	}
}
