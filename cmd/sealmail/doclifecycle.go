package main

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"path/filepath"
	"strings"

	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/signing"
)

func docRecall(ctx context.Context, args []string) error {
	f := newFlags("doc recall", "DOCUMENT-ID --reason TEXT [--domain D]\n\n"+
		"Recalls a document released here (thu hồi, Decree 30/2020 Art. 18.4): a notice\n"+
		"with status 13 and the reason, signed with the agency's seal, goes to every\n"+
		"recipient agency. Each receiving server withdraws the document from its incoming\n"+
		"register (kept, with its evidence), moves every copy its staff and clerks hold,\n"+
		"in INBOX or wherever they filed it (Trash excepted), to '"+registry.RecalledFolder+"'\n"+
		"and answers 15 (agreed), or 16 (refused) with its reason; 'sealmail doc status\n"+
		"DOCUMENT-ID' shows the answers.")
	reason := f.String("reason", "", "why the document is recalled (lý do thu hồi); required")
	domain := f.String("domain", "", "the agency `DOMAIN` that released it (default: any)")
	return lifecycle(ctx, f, args, 1, func(r *registry.Registry, pos []string) (mailstore.DocEntry, error) {
		return r.Recall(ctx, *domain, pos[0], *reason)
	}, "thu hồi / recall sent to the recipient agencies")
}

func docReturn(ctx context.Context, args []string) error {
	f := newFlags("doc return", "DOCUMENT-ID --reason TEXT [--domain D]\n\n"+
		"Returns a document received today to its sender (trả lại, Decree 30/2020\n"+
		"Art. 21.2: sent to the wrong agency, or not fit to be received): a notice with\n"+
		"status 02 and the reason, signed with the agency's seal. The incoming register\n"+
		"shows it returned. Documents that fail verification are returned this way\n"+
		"automatically on arrival.")
	reason := f.String("reason", "", "why the document is returned (lý do trả lại); required")
	domain := f.String("domain", "", "the receiving agency `DOMAIN` (default: any)")
	return lifecycle(ctx, f, args, 1, func(r *registry.Registry, pos []string) (mailstore.DocEntry, error) {
		return r.Return(ctx, *domain, pos[0], *reason)
	}, "trả lại / returned to the sender")
}

func docState(ctx context.Context, args []string) error {
	f := newFlags("doc state", "DOCUMENT-ID assigned|processing|done [--domain D]\n\n"+
		"Records how far a received document is processed (Decree 30/2020 Art. 23.4)\n"+
		"and reports it to the sender, signed with the agency's seal: assigned (04, đã\n"+
		"phân công xử lý), processing (05, đang xử lý), done (06, hoàn thành).")
	domain := f.String("domain", "", "the receiving agency `DOMAIN` (default: any)")
	return lifecycle(ctx, f, args, 2, func(r *registry.Registry, pos []string) (mailstore.DocEntry, error) {
		return r.SetState(ctx, *domain, pos[0], pos[1])
	}, "tình trạng xử lý đã báo nơi gửi / state reported to the sender")
}

func docUpdate(ctx context.Context, args []string) error {
	return docCorrect(ctx, args, mailstore.RelationUpdates, "doc update", "updates (đính chính, edXML BussinessDocType 2)")
}

func docReplace(ctx context.Context, args []string) error {
	return docCorrect(ctx, args, mailstore.RelationReplaces, "doc replace", "replaces (thay thế, edXML BussinessDocType 3)")
}

// docCorrect releases a document that updates or replaces one released here.
func docCorrect(ctx context.Context, args []string, relation, name, what string) error {
	f := newFlags(name, "DOCUMENT-ID --file FILE.pdf [--file FILE]... --reason TEXT [--subject TEXT] [--domain D]\n\n"+
		"Releases a new document that "+what+" the document\n"+
		"DOCUMENT-ID released here (Decree 30/2020 Art. 18.3), to the same recipients, as its\n"+
		"clerk would by mail: numbered, its PDFs sealed (the main one, first, must carry the\n"+
		"signature of the person with authority), registered and sent. Both the sender's and\n"+
		"each recipient's registers link the two documents.")
	var files multiFlag
	f.Var(&files, "file", "a `FILE` of the new document, the main PDF first; repeatable")
	reason := f.String("reason", "", "why (lý do); required")
	subject := f.String("subject", "", "the new document's subject (trích yếu; default the old one's)")
	domain := f.String("domain", "", "the agency `DOMAIN` that released it (default: any)")
	return lifecycle(ctx, f, args, 1, func(r *registry.Registry, pos []string) (mailstore.DocEntry, error) {
		if len(files) == 0 {
			return mailstore.DocEntry{}, f.errorf("missing --file FILE.pdf")
		}
		if strings.TrimSpace(*reason) == "" {
			return mailstore.DocEntry{}, f.errorf("missing --reason TEXT")
		}
		var fs []signing.File
		for _, name := range files {
			data, err := readLimited(name, maxPackage)
			if err != nil {
				return mailstore.DocEntry{}, err
			}
			fs = append(fs, signing.File{Name: filepath.Base(name), ContentType: mime.TypeByExtension(filepath.Ext(name)), Data: data})
		}
		return r.Correct(ctx, *domain, pos[0], relation, *reason, *subject, fs)
	}, what+" "+"the earlier document; released")
}

// lifecycle runs a lifecycle action on the document the first of n
// arguments names, and prints the register line it changed.
func lifecycle(ctx context.Context, f *flags, args []string, n int, do func(*registry.Registry, []string) (mailstore.DocEntry, error), done string) error {
	pos, s, err := f.parseOpen(args, n, n)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := docRegistry(*f.data, s)
	if err != nil {
		return err
	}
	e, err := do(r, pos)
	if errors.Is(err, mailstore.ErrNotFound) {
		return fmt.Errorf("%w; see 'sealmail doc register list'", err)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s %s (%s): %s; status %s\n", e.Notation, e.DocumentID, e.Domain, done, e.Status)
	return nil
}

// printStatuses prints the statuses of a register line, one a line.
func printStatuses(sts []registry.Status) {
	if len(sts) == 0 {
		return
	}
	fmt.Println("  statuses (trạng thái):")
	printTable("    TIME\tCODE\tSTATUS\tAGENCY\tREASON", sts, func(st registry.Status) string {
		dir := "←"
		if !st.Received {
			dir = "→"
		}
		return fmt.Sprintf("    %s\t%s\t%s / %s\t%s %s\t%s", st.Time.In(registry.ICT).Format("2006-01-02 15:04:05"), st.Code,
			st.Name[0], st.Name[1], dir, st.Agency, strings.ReplaceAll(st.Reason, "\n", " "))
	})
}
