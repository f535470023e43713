package main

import (
	"bytes"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sealmail/config"
	"sealmail/edxml"
	"sealmail/mailstore"
	"sealmail/registry"
)

// TestDocEdXML: a document released by one instance goes to another as an
// edXML package through 'doc export --edxml' and 'doc import', which
// verifies, registers, delivers and answers it; both sides export the
// status messages.
func TestDocEdXML(t *testing.T) {
	a := agencyData(t)
	b := peerData(t, a)
	dir := t.TempDir()

	id := documentID(t, sendDocument(t, a, 1))
	pkgFile := filepath.Join(dir, "cv.edxml")
	fails(t, "", []string{"doc", "export", id, "--data", a}, "give one of --edxml and --status")
	ok(t, "", "doc", "export", id, "--edxml", "--out", pkgFile, "--data", a)
	pkg, err := edxml.Parse(readAll(t, pkgFile))
	if err != nil {
		t.Fatal(err)
	}
	if h := pkg.Envelope.Header.MessageHeader; h.DocumentID != id || h.Subject != "Công văn 1" || len(pkg.Attachments) != 1 {
		t.Fatalf("exported package: %+v", h)
	}

	fails(t, "", []string{"doc", "import", pkgFile, "--data", b}, "missing --to")
	fails(t, "", []string{"doc", "import", pkgFile, "--to", "x@nowhere.example", "--data", b}, "not hosted here")
	out := ok(t, "", "doc", "import", pkgFile, "--to", "lan@so.example", "--data", b)
	if !strings.Contains(out, "VERIFIED") || !strings.Contains(out, "registered by so.example as số đến 1/") {
		t.Errorf("doc import printed:\n%s", out)
	}
	if out := ok(t, "", "doc", "import", pkgFile, "--to", "lan@so.example", "--data", b); !strings.Contains(out, "already registered") {
		t.Errorf("second import printed:\n%s", out)
	}
	rows := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--incoming", "--json", "--year", id[strings.Index(id, ",")+1:][:4], "--data", b))
	if len(rows) != 1 || rows[0].DocumentID != id || rows[0].Organ != "Sở Thông tin và Truyền thông" || len(rows[0].Acks) != 1 ||
		rows[0].Acks[0].StatusCode != "03" || rows[0].Acks[0].Party != "vanthu@agency.example" {
		t.Fatalf("B's incoming register: %+v", rows)
	}
	// The receipt waits in B's queue for the relay, to A's official address.
	q, err := openStore(t, b).Queue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Rcpts[0].Addr != "vanthu@agency.example" {
		t.Errorf("B's queue: %+v", q)
	}
	lan, err := openStore(t, b).Account(t.Context(), "lan@so.example")
	if err != nil {
		t.Fatal(err)
	}
	if mb, err := openStore(t, b).Mailbox(t.Context(), lan.ID, mailstore.Inbox); err != nil || mb.UIDNext != 2 {
		t.Errorf("lan's INBOX: %+v, %v", mb, err)
	}

	statusDir := filepath.Join(dir, "status")
	out = ok(t, "", "doc", "export", id, "--status", "--incoming", "--out", statusDir, "--data", b)
	// B registered it as it arrived: its one receipt says 01 and 03.
	files := strings.Fields(out)
	if len(files) != 2 {
		t.Fatalf("status files: %q", out)
	}
	for i, code := range []string{"01", "03"} {
		st, err := edxml.Parse(readAll(t, files[i]))
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Envelope.Header.Status; s == nil || s.StatusCode != code || s.ResponseFor.DocumentID != id || s.From.OrganID != "000.00.13.H10" {
			t.Errorf("status message %d: %+v", i, s)
		}
	}

	// A package whose PDF changed after signing is quarantined.
	id2 := documentID(t, sendDocument(t, a, 2))
	ok(t, "", "doc", "export", id2, "--edxml", "--out", pkgFile, "--data", a)
	pkg, err = edxml.Parse(readAll(t, pkgFile))
	if err != nil {
		t.Fatal(err)
	}
	pkg.Attachments[0].Data[len(pkg.Attachments[0].Data)/3] ^= 1
	data, err := edxml.Marshal(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pkgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// (The log's warning stands before the error.)
	if r := sealmail(t, "", "doc", "import", pkgFile, "--to", "lan@so.example", "--data", b); r.code != 1 ||
		!strings.Contains(r.stderr, "did not verify: quarantined") || !strings.Contains(r.stdout, "digest-mismatch") {
		t.Errorf("tampered package: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if rows := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--incoming", "--json", "--year", id[strings.Index(id, ",")+1:][:4], "--data", b)); len(rows) != 1 {
		t.Errorf("B's incoming register after the tampered package: %d lines", len(rows))
	}
}

// peerData sets up a second agency, so.example (Sở Tài chính, clerk and
// lan), that knows agency a as a peer trusted through its seal CA.
func peerData(t *testing.T, a string) string {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "agency-ca.pem")
	if err := os.WriteFile(caFile, []byte(ok(t, "", "seal", "export-ca", "agency.example", "--data", a)), 0o600); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(t.TempDir(), "data")
	ok(t, "", "init", "--data", b, "--domain", "so.example")
	ok(t, "", "domain", "update", "so.example", "--data", b, "--organ-id", "000.00.13.H10", "--organ-name", "Sở Tài chính",
		"--code", "STC-VP", "--official-address", "vanthu@so.example")
	ok(t, "", "user", "add", "clerk@so.example", "--role", "clerk", "--data", b)
	ok(t, "", "user", "add", "lan@so.example", "--data", b)
	ok(t, "", "alias", "add", "vanthu@so.example", "clerk@so.example", "--data", b)
	ok(t, "", "seal", "init", "so.example", "--data", b)
	ok(t, "", "peer", "add", "agency.example", "--organ-id", "000.00.12.H10", "--organ-name", "Sở Thông tin và Truyền thông",
		"--seal-ca", caFile, "--data", b)
	return b
}

// TestDocEdXMLSigned: 'doc export --edxml --sign' signs the package with
// the agency's seal (XML-DSig) and 'doc import' on another instance checks
// the signature; a signed package changed afterwards is quarantined, and an
// unsigned one only while documents.require-edxml-signature is off.
func TestDocEdXMLSigned(t *testing.T) {
	a := agencyData(t)
	b := peerData(t, a)
	dir := t.TempDir()
	pkgFile := filepath.Join(dir, "cv.edxml")
	export := func(n int, args ...string) string {
		t.Helper()
		id := documentID(t, sendDocument(t, a, n))
		ok(t, "", append([]string{"doc", "export", id, "--edxml", "--out", pkgFile, "--data", a}, args...)...)
		return id
	}
	quarantined := func(reason string) {
		t.Helper()
		if r := sealmail(t, "", "doc", "import", pkgFile, "--to", "lan@so.example", "--data", b); r.code != 1 ||
			!strings.Contains(r.stderr, "did not verify: quarantined") || !strings.Contains(r.stdout, reason) {
			t.Errorf("import: exit %d, want quarantined for %s\n%s\n%s", r.code, reason, r.stdout, r.stderr)
		}
	}

	id := export(1, "--sign")
	if !bytes.Contains(readAll(t, pkgFile), []byte("<SignatureValue>")) {
		t.Fatal("the exported package is not signed")
	}
	out := ok(t, "", "doc", "import", pkgFile, "--to", "lan@so.example", "--data", b)
	if !strings.Contains(out, "PASS xmldsig") || !strings.Contains(out, "registered by so.example as số đến 1/") {
		t.Errorf("doc import of the signed package printed:\n%s", out)
	}
	fails(t, "", []string{"doc", "export", id, "--edxml", "--sign", "--incoming", "--data", b}, "not signed again")

	export(2, "--sign")
	signed := readAll(t, pkgFile)
	if err := os.WriteFile(pkgFile, bytes.Replace(signed, []byte("<Subject>"), []byte("<Subject>Khẩn: "), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	quarantined("bad-signature")

	// Unsigned packages are taken by default (TestDocEdXML); not once the
	// policy requires a signature.
	conf := filepath.Join(b, config.FileName)
	before := string(readAll(t, conf))
	after := strings.Replace(before, "require-edxml-signature = false", "require-edxml-signature = true", 1)
	if after == before {
		t.Fatalf("%s has no require-edxml-signature = false", conf)
	}
	if err := os.WriteFile(conf, []byte(after), 0o600); err != nil {
		t.Fatal(err)
	}
	export(3)
	quarantined("not-signed")
	export(4, "--sign")
	if out := ok(t, "", "doc", "import", pkgFile, "--to", "lan@so.example", "--data", b); !strings.Contains(out, "registered by so.example as số đến 2/") {
		t.Errorf("signed package under the policy:\n%s", out)
	}
}

// TestDocEdXMLStatus: statuses travel between two instances as edXML
// files: B imports A's document, reports it assigned and exports its
// statuses; A imports them with 'doc import', which records them in its
// outgoing register (no mail went between them), and refuses a status
// about a document it did not send.
func TestDocEdXMLStatus(t *testing.T) {
	a := agencyData(t)
	b := peerData(t, a)
	// A knows B, to take its statuses.
	caFile := filepath.Join(t.TempDir(), "so-ca.pem")
	if err := os.WriteFile(caFile, []byte(ok(t, "", "seal", "export-ca", "so.example", "--data", b)), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "peer", "add", "so.example", "--organ-id", "000.00.13.H10", "--organ-name", "Sở Tài chính", "--seal-ca", caFile, "--data", a)
	dir := t.TempDir()
	pkgFile := filepath.Join(dir, "cv.edxml")
	id := documentID(t, sendDocumentTo(t, a, 1, "vanthu@so.example"))
	ok(t, "", "doc", "export", id, "--edxml", "--out", pkgFile, "--data", a)
	ok(t, "", "doc", "import", pkgFile, "--to", "lan@so.example", "--data", b)
	ok(t, "", "doc", "state", id, "assigned", "--data", b)
	// Signed by B's seal, as A's policy requires.
	files := strings.Fields(ok(t, "", "doc", "export", id, "--status", "--sign", "--incoming", "--out", filepath.Join(dir, "b"), "--data", b))
	if len(files) != 3 {
		t.Fatalf("B's status files: %q", files)
	}
	conf := filepath.Join(a, config.FileName)
	policy := strings.Replace(string(readAll(t, conf)), "require-edxml-signature = false", "require-edxml-signature = true", 1)
	if err := os.WriteFile(conf, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		out := ok(t, "", "doc", "import", f, "--data", a)
		if !strings.Contains(out, "PASS xmldsig") || !strings.Contains(out, "recorded: status") ||
			!strings.Contains(out, "from vanthu@so.example for 01/STTTT-VP, in the out register of agency.example") {
			t.Errorf("doc import %s printed:\n%s", filepath.Base(f), out)
		}
	}
	if out := ok(t, "", "doc", "import", files[2], "--data", a); !strings.Contains(out, "already recorded: status 04") {
		t.Errorf("the same status again:\n%s", out)
	}
	st := decode[statusJSON](t, ok(t, "", "doc", "status", id, "--json", "--data", a))
	var codes []string
	for _, s := range st.Entries[0].Statuses {
		codes = append(codes, s.Code)
	}
	if len(st.Entries) != 1 || st.Entries[0].Register != "out" || strings.Join(codes, " ") != "01 03 04" {
		t.Errorf("A's statuses: %+v", st.Entries)
	}
	back := strings.Fields(ok(t, "", "doc", "export", id, "--status", "--out", filepath.Join(dir, "a"), "--data", a))
	if len(back) != 3 {
		t.Errorf("A exports %d statuses", len(back))
	}

	// An unsigned status is refused under the policy; and so, signed or not,
	// are statuses about documents A did not send to B.
	unsigned := strings.Fields(ok(t, "", "doc", "export", id, "--status", "--incoming", "--out", filepath.Join(dir, "u"), "--data", b))
	fails(t, "", []string{"doc", "import", unsigned[2], "--data", a}, "not-signed")
	if err := os.WriteFile(conf, []byte(strings.Replace(policy, "require-edxml-signature = true", "require-edxml-signature = false", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	other := documentID(t, sendDocument(t, a, 2)) // never sent to B
	data := bytes.Replace(readAll(t, unsigned[2]), []byte(id), []byte(other), -1)
	if err := os.WriteFile(pkgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"doc", "import", pkgFile, "--data", a}, "was not sent to so.example")
	data = bytes.Replace(readAll(t, unsigned[2]), []byte(id), []byte("000.00.12.H10,2026/01/02,99/STTTT-VP"), -1)
	if err := os.WriteFile(pkgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"doc", "import", pkgFile, "--data", a}, "which this server did not send")
}

// documentID reads the Official-Document-Id of a stamped message.
func documentID(t *testing.T, msg []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	id := m.Header.Get("Official-Document-Id")
	if id == "" {
		t.Fatal("no Official-Document-Id")
	}
	return id
}

// TestDocEdXMLCorrections: a replacement and an update released by one
// instance ('doc replace', 'doc update') go to another as edXML packages
// ('doc export --edxml', 'doc import'): verified and registered as any
// document, and linked in its register to the documents they correct, as
// by mail. A correction that names no document is refused; a recall
// package withdraws the document there, moves its copy and answers 15,
// once.
func TestDocEdXMLCorrections(t *testing.T) {
	ctx := t.Context()
	a := agencyData(t)
	b := peerData(t, a)
	dir := t.TempDir()
	export := func(id, name string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		ok(t, "", "doc", "export", id, "--edxml", "--out", f, "--data", a)
		return f
	}
	sentIDs := func() []string {
		var ids []string
		for _, e := range decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--outgoing", "--json", "--data", a)) {
			ids = append(ids, e.DocumentID)
		}
		return ids
	}
	first := documentID(t, sendDocument(t, a, 1))
	ok(t, "", "doc", "import", export(first, "1.edxml"), "--to", "lan@so.example", "--data", b)

	pdf := filepath.Join(dir, "cv-moi.pdf")
	if err := os.WriteFile(pdf, signedPDF(t, 7), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, "", "doc", "replace", first, "--file", pdf, "--reason", "Sai số liệu", "--data", a)
	second := sentIDs()[1]
	replacement := export(second, "2.edxml")
	pkg, err := edxml.Parse(readAll(t, replacement))
	if err != nil {
		t.Fatal(err)
	}
	if bz := pkg.Bussiness(); bz.BussinessDocType != edxml.DocReplace || bz.DocumentID != second || bz.BussinessDocReason != "Sai số liệu" ||
		len(bz.ReplacementInfoList) != 1 || bz.ReplacementInfoList[0].DocumentID != first {
		t.Fatalf("the replacement's Bussiness: %+v", bz)
	}
	out := ok(t, "", "doc", "import", replacement, "--to", "lan@so.example", "--data", b)
	if !strings.Contains(out, "VERIFIED") || !strings.Contains(out, "as số đến 2/") || !strings.Contains(out, "replaces "+first) {
		t.Errorf("doc import of the replacement printed:\n%s", out)
	}
	ok(t, "", "doc", "update", second, "--file", pdf, "--reason", "Sai ngày ban hành", "--data", a)
	third := sentIDs()[2]
	update := export(third, "3.edxml")

	// An update that does not say what it updates is refused, and changes nothing.
	pkg, err = edxml.Parse(readAll(t, update))
	if err != nil {
		t.Fatal(err)
	}
	pkg.Envelope.Header.Trace.Bussiness.ReplacementInfoList = nil
	data, err := edxml.Marshal(pkg)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.edxml")
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"doc", "import", bad, "--to", "lan@so.example", "--data", b}, "names no document it corrects")

	if out := ok(t, "", "doc", "import", update, "--to", "lan@so.example", "--data", b); !strings.Contains(out, "updates "+second) {
		t.Errorf("doc import of the update printed:\n%s", out)
	}
	in := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--incoming", "--json", "--data", b))
	if len(in) != 3 {
		t.Fatalf("B's incoming register: %+v", in)
	}
	if in[1].DocumentID != second || in[1].Relation != mailstore.RelationReplaces || in[1].Related != first ||
		!strings.Contains(in[1].Notes, "Thay thế văn bản / replaces "+first+": Sai số liệu") ||
		!strings.Contains(in[0].Notes, "Được thay thế bởi / replaced by "+second+": Sai số liệu (số đến 2)") {
		t.Errorf("B's lines of the first document and its replacement:\n%+v\n%+v", in[0], in[1])
	}
	if in[2].DocumentID != third || in[2].Relation != mailstore.RelationUpdates || in[2].Related != second ||
		!strings.Contains(in[1].Notes, "Được đính chính bởi / updated by "+third+": Sai ngày ban hành (số đến 3)") {
		t.Errorf("B's lines of the replacement and its update:\n%+v\n%+v", in[1], in[2])
	}
	for _, e := range in {
		if e.Status != "received" || len(e.Acks) != 1 || e.Acks[0].StatusCode != "03" {
			t.Errorf("B's line %d: %s, acks %+v", e.Number, e.Status, e.Acks)
		}
	}

	// A recall package (BussinessDocType 1), as other document software
	// sends one: the first document's header, the reason, when.
	pkg, err = edxml.Parse(readAll(t, filepath.Join(dir, "1.edxml")))
	if err != nil {
		t.Fatal(err)
	}
	pkg.Envelope.Header.Trace.Bussiness = edxml.Bussiness{BussinessDocType: edxml.DocRecall, BussinessDocReason: "Ban hành sai thẩm quyền", DocumentID: first}
	pkg.Attachments = nil
	if data, err = edxml.Marshal(pkg); err != nil {
		t.Fatal(err)
	}
	recall := filepath.Join(dir, "thu-hoi.edxml")
	if err := os.WriteFile(recall, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out = ok(t, "", "doc", "import", recall, "--data", b)
	if !strings.Contains(out, "recorded: status 13") || !strings.Contains(out, "the line is withdrawn") {
		t.Errorf("doc import of the recall printed:\n%s", out)
	}
	if out := ok(t, "", "doc", "import", recall, "--data", b); !strings.Contains(out, "already recorded: status 13") {
		t.Errorf("the same recall again:\n%s", out)
	}
	in = decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--incoming", "--json", "--data", b))
	if in[0].Status != "withdrawn" || !strings.Contains(in[0].Notes, "Ban hành sai thẩm quyền") || in[1].Status != "received" {
		t.Errorf("B's lines after the recall:\n%+v\n%+v", in[0], in[1])
	}
	s := openStore(t, b)
	lan, err := s.Account(ctx, "lan@so.example")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{registry.RecalledFolder: 1, mailstore.Inbox: 3} { // the replacement, the update, the recall notice
		mb, err := s.Mailbox(ctx, lan.ID, name)
		if err != nil {
			t.Fatalf("lan's %s: %v", name, err)
		}
		if st, err := s.MailboxStatus(ctx, mb.ID); err != nil || st.Messages != want {
			t.Errorf("lan's %s holds %d, want %d (%v)", name, st.Messages, want, err)
		}
	}
	// The answer, 15, waits for the relay to A, once.
	q, err := s.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agreed := 0
	for _, e := range q {
		msg, err := s.QueueContent(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m.Header.Get("Official-Document-Receipt"), "RecallAgreed;") {
			agreed++
		}
	}
	if agreed != 1 {
		t.Errorf("%d answers 15 queued among %d messages, want 1", agreed, len(q))
	}
}
