package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sealmail/edxml"
	"sealmail/mailstore"
	"sealmail/registry"
)

// maxPackage bounds an edXML file read by 'doc import': base64 inside XML,
// so about 4/3 of the files it carries.
const maxPackage = 512 << 20

func docExport(ctx context.Context, args []string) error {
	f := newFlags("doc export", "DOCUMENT-ID --edxml [--sign]|--status [--out PATH] [--domain D] [--incoming]\n\n"+
		"--edxml writes the document as an edXML package (QCVN 102:2016/BTTTT) with its\n"+
		"files as sealed, to --out FILE or standard output; with --sign the package\n"+
		"carries an XML-DSig signature by the agency's seal. --status writes each of its\n"+
		"status messages (01 arrived, 02 refused, 03 registered, 04/05/06, 13, 15/16) as\n"+
		"an edXML file in the directory --out; with --sign those this agency said are\n"+
		"signed by its seal (those it received are written unsigned: they are another\n"+
		"agency's). The outgoing register's line is taken unless --incoming.")
	asEdXML := f.Bool("edxml", false, "write the document as an edXML package")
	sign := f.Bool("sign", false, "sign the edXML package, or the statuses this agency said, with its seal (XML-DSig)")
	status := f.Bool("status", false, "write its status messages, one edXML file each")
	out := f.String("out", "", "the `PATH` to write: a file for --edxml (default standard output), a directory for --status")
	domain := f.String("domain", "", "the agency `DOMAIN` whose register holds it (default: any)")
	incoming := f.Bool("incoming", false, "the line of the incoming register (sổ đến)")
	pos, s, err := f.parseOpen(args, 1, 1)
	if err != nil {
		return err
	}
	defer s.Close()
	if *asEdXML == *status {
		return f.errorf("give one of --edxml and --status")
	}
	if *status && *out == "" {
		return f.errorf("--status needs --out DIR")
	}
	dir := mailstore.DocOut
	if *incoming {
		dir = mailstore.DocIn
	}
	es, err := s.Docs(ctx, mailstore.DocQuery{DocumentID: pos[0], Domain: *domain, Direction: dir})
	if err != nil {
		return err
	}
	switch {
	case len(es) == 0:
		return fmt.Errorf("no document %s in the %s register here; see 'sealmail doc register list --%s'", pos[0], dir, map[bool]string{true: "incoming", false: "outgoing"}[*incoming])
	case len(es) > 1:
		var ds []string
		for _, e := range es {
			ds = append(ds, e.Domain)
		}
		return fmt.Errorf("document %s is in the registers of %s: give --domain", pos[0], strings.Join(ds, ", "))
	}
	r, err := docRegistry(*f.data, s)
	if err != nil {
		return err
	}
	if *asEdXML {
		data, err := r.ExportEdXML(ctx, es[0], *sign)
		if err != nil {
			return err
		}
		if *out == "" {
			_, err = os.Stdout.Write(data)
			return err
		}
		return os.WriteFile(*out, data, 0o644)
	}
	msgs, err := r.StatusMessages(ctx, es[0])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for i, m := range msgs {
		name := filepath.Join(*out, fmt.Sprintf("%02d-status-%s-%s.edxml", i+1, m.Status.Code, strings.ReplaceAll(m.Status.Agency, "@", "_")))
		data := m.Data
		switch {
		case *sign && m.Status.Received:
			fmt.Fprintf(os.Stderr, "%s: status %s is %s's, written unsigned\n", filepath.Base(name), m.Status.Code, m.Status.Agency)
		case *sign:
			if data, err = r.SignEdXML(es[0].Domain, data); err != nil {
				return err
			}
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return err
		}
		fmt.Println(name)
	}
	if len(msgs) == 0 {
		fmt.Fprintf(os.Stderr, "document %s has no status messages yet\n", pos[0])
	}
	return nil
}

func docImport(ctx context.Context, args []string) error {
	f := newFlags("doc import", "FILE.edxml --to ADDRESS [--to ADDRESS]... [--json]\n\n"+
		"Receives an edXML package (QCVN 102:2016/BTTTT) for the hosted addresses: the\n"+
		"signatures inside its PDF files are verified (the last one the sending agency's,\n"+
		"named by From/Email, chaining to its seal CA), and its XML-DSig signature when it\n"+
		"has one (required with documents.require-edxml-signature); then it is registered\n"+
		"under the next incoming number, delivered to the addresses and the clerks' 'Văn bản\n"+
		"đến', and a signed receipt goes back to the sender; or it is quarantined with a\n"+
		"notice and the sender is told why (status 02). Exits 1 when it was quarantined.\n"+
		"A package that updates or replaces a document (BussinessDocType 2, 3) is received\n"+
		"the same way and linked to the one its ReplacementInfo names, as by mail: the new\n"+
		"line names it, and its line here, if any, names the new one. A recall package\n"+
		"(BussinessDocType 1) is carried out as a status 13 is (below); --to is optional.\n\n"+
		"An edXML status message (01-06, 15, 16 from an agency a document was sent to; 13,\n"+
		"a recall, from the agency that sent one) is recorded against the register line of\n"+
		"that document, as if it had come by mail; --to is then optional and names the\n"+
		"agency whose register holds it. Statuses about unknown documents, or from agencies\n"+
		"the document was not exchanged with, are refused.")
	var to multiFlag
	f.Var(&to, "to", "a hosted `ADDRESS` to deliver to; repeatable")
	asJSON := f.Bool("json", false, "print JSON")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	data, err := readLimited(pos[0], maxPackage)
	if err != nil {
		return err
	}
	s, err := open(*f.data)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := docRegistry(*f.data, s)
	if err != nil {
		return err
	}
	imp, err := r.ImportEdXML(ctx, data, to)
	if errors.Is(err, registry.ErrNoRecipients) {
		return f.errorf("missing --to ADDRESS: %s is a document, delivered to hosted addresses", pos[0])
	}
	if err != nil {
		if errors.Is(err, registry.ErrRejected) {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		return err
	}
	if *asJSON {
		rows := make([]docJSON, len(imp.Entries))
		for i, e := range imp.Entries {
			rows[i] = toJSON(e)
		}
		if err := printJSON(struct {
			Before  bool      `json:"imported_before"`
			Entries []docJSON `json:"entries"`
			Status  any       `json:"status,omitempty"`
			Result  any       `json:"verification,omitempty"`
		}{imp.Before, rows, imp.Status, imp.Result}); err != nil {
			return err
		}
	} else {
		if imp.Result != nil {
			fmt.Print(imp.Result.String())
		}
		if st := imp.Status; st != nil {
			what := "recorded"
			if imp.Before {
				what = "already recorded"
			}
			for _, e := range imp.Entries {
				names := edxml.StatusNames[st.StatusCode]
				fmt.Printf("%s: status %s (%s / %s) from %s for %s, in the %s register of %s; the line is %s\n",
					what, st.StatusCode, names[0], names[1], st.From.Email, e.Notation, e.Direction, e.Domain, e.Status)
			}
			return nil
		}
		for _, e := range imp.Entries {
			what := "registered"
			if imp.Before {
				what = "already registered"
			}
			link := ""
			if e.Relation != "" {
				link = ", " + e.Relation + " " + e.Related
			}
			fmt.Printf("%s by %s as số đến %d/%d: %s%s\n", what, e.Domain, e.Number, e.Year, e.Notation, link)
		}
	}
	if !imp.Before && len(imp.Entries) == 0 {
		return fmt.Errorf("%s did not verify: quarantined, and the sender was told why", pos[0])
	}
	return nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(name string, limit int64) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, fi.Size(), limit)
	}
	return os.ReadFile(name)
}
