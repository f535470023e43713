package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/registry/book"
)

// docRegisterAdd records a paper document: Decree 30/2020 numbers paper and
// electronic documents in one series, so the clerk registers each paper one
// here and writes the number it gets on the paper.
func docRegisterAdd(ctx context.Context, args []string) error {
	f := newFlags("doc register add", "--outgoing|--incoming --domain D --subject TEXT [--type NAME] [--signer NAME]\n"+
		"    [--organ NAME --notation NUMBER/CODE --date YYYY-MM-DD] [--to PLACE]... [--filed-with UNIT] [--copies N]\n"+
		"    [--confidential] [--notes TEXT]\n\n"+
		"An outgoing document takes the next number of the domain's register and today's date;\n"+
		"an incoming one the next incoming number (số đến), and keeps its issuing organ's number,\n"+
		"notation and date. --confidential uses the separate register of confidential (mật) documents.")
	reg := registerFlags(f)
	subject := f.String("subject", "", "the `TEXT` of the abstract (trích yếu)")
	docType := f.String("type", "", "the document type `NAME` (tên loại): Công văn, Quyết định, Tờ trình, ...")
	signer := f.String("signer", "", "who signed it: `NAME` and title")
	organ := f.String("organ", "", "incoming: the issuing organ's `NAME` (tác giả)")
	notation := f.String("notation", "", "incoming: the document's number and notation `NUMBER/CODE`, e.g. 4567/UBND-KGVX")
	date := f.String("date", "", "incoming: the document's `DATE`, YYYY-MM-DD")
	var to multiFlag
	f.Var(&to, "to", "a `PLACE` it goes to (outgoing) or unit or person it is passed to (incoming); repeatable")
	filedWith := f.String("filed-with", "", "outgoing: the `UNIT` or person keeping the filed copy (bản lưu)")
	copies := f.Int("copies", 0, "the `NUMBER` of copies (default: one per --to, at least 1)")
	notes := f.String("notes", "", "`TEXT` for the notes column (ghi chú)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	dir, domain, confidential, err := reg()
	if err != nil {
		return err
	}
	if strings.TrimSpace(*subject) == "" {
		return f.errorf("missing --subject: the abstract (trích yếu) of the document")
	}
	if *copies < 0 {
		return f.errorf("--copies: %d is negative", *copies)
	}
	p := registry.Paper{Domain: domain, Direction: dir, Confidential: confidential, DocType: *docType,
		Subject: *subject, Signer: *signer, Recipients: to, FiledWith: *filedWith, Copies: *copies, Notes: *notes}
	if dir == mailstore.DocIn {
		if *organ == "" || *notation == "" || *date == "" {
			return f.errorf("an incoming document needs --organ, --notation and --date as they stand on it")
		}
		d, err := time.ParseInLocation(time.DateOnly, *date, registry.ICT)
		if err != nil {
			return f.errorf("--date %q: want YYYY-MM-DD", *date)
		}
		p.Organ, p.Notation, p.Date = *organ, *notation, d
	} else if *organ != "" || *notation != "" || *date != "" {
		return f.errorf("--organ, --notation and --date are for incoming documents; an outgoing one is numbered and dated here")
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Domain(ctx, domain); err != nil {
		return fmt.Errorf("domain %s is not hosted here; see 'sealmail domain list'", domain)
	}
	r := &registry.Registry{Store: s, DataDir: *f.data}
	e, err := r.RegisterPaper(ctx, p)
	if err != nil {
		return err
	}
	book := "outgoing register (sổ văn bản đi)"
	if e.Direction == mailstore.DocIn {
		book = "incoming register (sổ văn bản đến)"
	}
	if e.Series == mailstore.SeriesConfidential {
		book = "confidential " + book + ", văn bản mật"
	}
	if e.Direction == mailstore.DocIn {
		fmt.Printf("registered %s from %s as số đến %d of %d in the %s\n", e.Notation, e.Organ, e.Number, e.Year, book)
	} else {
		fmt.Printf("registered số %s, ngày %s, in the %s of %d\n", e.Notation, e.DocDate, book, e.Year)
	}
	return nil
}

// docRegisterExport writes a register as the clerk prints and binds it
// (Decree 30/2020 Art. 16.2.b, 22.3.b: "in ra giấy ..., đóng sổ").
func docRegisterExport(ctx context.Context, args []string) error {
	f := newFlags("doc register export", "--outgoing|--incoming --domain D [--year Y] [--confidential] --format pdf|csv|xlsx [--output FILE]")
	reg := registerFlags(f)
	year := f.Int("year", time.Now().In(registry.ICT).Year(), "the `YEAR` (default this year)")
	format := f.String("format", "", "`pdf` (A4 landscape, to print), csv or xlsx")
	output := f.String("output", "", "write to `FILE` instead of standard output")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	dir, domain, confidential, err := reg()
	if err != nil {
		return err
	}
	switch *format {
	case "pdf", "csv", "xlsx":
	case "":
		return f.errorf("missing --format: pdf, csv or xlsx")
	default:
		return f.errorf("--format %q: want pdf, csv or xlsx", *format)
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.Domain(ctx, domain)
	if err != nil {
		return fmt.Errorf("domain %s is not hosted here; see 'sealmail domain list'", domain)
	}
	es, err := s.Docs(ctx, mailstore.DocQuery{Domain: d.Name, Direction: dir, Year: *year})
	if err != nil {
		return err
	}
	series := mailstore.SeriesOrdinary
	if confidential {
		series = mailstore.SeriesConfidential
	}
	b := &book.Book{Agency: d.OrganName, Direction: dir, Year: *year, Confidential: confidential, Location: registry.ICT}
	if b.Agency == "" {
		b.Agency = d.Name
	}
	for _, e := range es {
		if e.Series == series {
			b.Entries = append(b.Entries, e)
		}
	}
	var buf bytes.Buffer
	switch *format {
	case "pdf":
		err = b.WritePDF(&buf, time.Now().In(registry.ICT))
	case "csv":
		err = b.WriteCSV(&buf)
	case "xlsx":
		err = b.WriteXLSX(&buf)
	}
	if err != nil {
		return err
	}
	if *output == "" {
		_, err = os.Stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(*output, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d document(s) of the %d %s\n", *output, len(b.Entries), *year, strings.ToLower(b.Title()))
	return nil
}

// registerFlags adds the flags that pick a register: --outgoing or
// --incoming, --domain and --confidential. The function it returns checks
// them once parsed.
func registerFlags(f *flags) func() (mailstore.Direction, string, bool, error) {
	out := f.Bool("outgoing", false, "the register of documents sent (sổ văn bản đi)")
	in := f.Bool("incoming", false, "the register of documents received (sổ văn bản đến)")
	domain := f.String("domain", "", "the agency's `DOMAIN`")
	confidential := f.Bool("confidential", false, "the separate register of confidential (mật) documents")
	return func() (mailstore.Direction, string, bool, error) {
		switch {
		case *out == *in:
			return "", "", false, f.errorf("give one of --outgoing and --incoming")
		case *domain == "":
			return "", "", false, f.errorf("missing --domain")
		case *in:
			return mailstore.DocIn, *domain, *confidential, nil
		}
		return mailstore.DocOut, *domain, *confidential, nil
	}
}

// multiFlag is a flag that may be given several times.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, "; ") }

func (m *multiFlag) Set(v string) error {
	if v = strings.TrimSpace(v); v == "" {
		return fmt.Errorf("empty value")
	}
	*m = append(*m, v)
	return nil
}
