package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"sealmail/mailstore"
	"sealmail/registry"
	"sealmail/signing"
)

// released has A's clerk release a document to lan at B, waits until B
// registered it and A recorded B's receipt, and returns A's register line.
func released(t *testing.T, a, b *instance) mailstore.DocEntry {
	t.Helper()
	a.submitFrom(t, "clerk", officialA, []string{lan}, document(t, officialA, lan, "cv.pdf", pdf(20<<10)))
	a.delivered(t)
	b.delivered(t)
	if ack := a.ack(t, officialB); ack.StatusCode != "03" {
		t.Fatalf("B's receipt: %+v", ack)
	}
	return a.register(t, mailstore.DocOut)[0]
}

// line returns the only line of x's register dir.
func (x *instance) line(t testing.TB, dir mailstore.Direction) mailstore.DocEntry {
	t.Helper()
	es := x.register(t, dir)
	if len(es) != 1 {
		t.Fatalf("%s's %s register: %+v", x.domain, dir, es)
	}
	return es[0]
}

// statuses returns the statuses x's line of dir lists, "CODE AGENCY" (← for
// received, → for sent), oldest first.
func (x *instance) statuses(t testing.TB, dir mailstore.Direction) []string {
	t.Helper()
	sts, err := x.docs.Statuses(context.Background(), x.line(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range sts {
		arrow := "→"
		if s.Received {
			arrow = "←"
		}
		out = append(out, s.Code+" "+arrow+" "+s.Agency)
	}
	return out
}

// TestRecall: A recalls a document B registered; B withdraws it (its line
// kept, marked withdrawn), moves every copy its staff hold to "Văn bản thu
// hồi" — lan's two, which she filed in folders of her own, and the clerk's
// from "Văn bản đến" — but not the one lan threw away, tells lan and its
// clerk, and answers 15; A's line becomes recalled, with every status in
// order.
func TestRecall(t *testing.T) {
	ctx := context.Background()
	a, b := agencies(t)
	e := released(t, a, b)
	if n := len(b.inbox(t, "lan")); n != 1 {
		t.Fatalf("lan's INBOX holds %d messages before the recall", n)
	}
	const filed, kept = "Hồ sơ/Công văn đến", "Lưu trữ"
	b.file(t, "lan", filed, "Trash", kept)

	const reason = "Văn bản ban hành sai thẩm quyền"
	if _, err := a.docs.Recall(ctx, "", e.DocumentID, ""); err == nil {
		t.Error("a recall without a reason was sent")
	}
	got, err := a.docs.Recall(ctx, "", e.DocumentID, reason)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != registry.StatusRecalling || !strings.Contains(got.Notes, reason) {
		t.Errorf("A's line after the recall: %+v", got)
	}
	if _, err := a.docs.Recall(ctx, "", e.DocumentID, reason); !errors.Is(err, registry.ErrState) {
		t.Errorf("a second recall: %v", err)
	}
	a.delivered(t)

	in := b.line(t, mailstore.DocIn)
	if in.Status != registry.StatusWithdrawn || !strings.Contains(in.Notes, reason) || !strings.Contains(in.Notes, officialA) {
		t.Errorf("B's line after the recall: %+v", in)
	}
	inbox := b.inbox(t, "lan")
	if len(inbox) != 1 || !strings.HasPrefix(headerOf(t, inbox[0]).Get("Official-Document-Receipt"), "RecallRequest;") {
		t.Errorf("lan's INBOX holds %d messages, want only the recall notice", len(inbox))
	}
	moved := b.folder(t, "lan", registry.RecalledFolder)
	if len(moved) != 2 || headerOf(t, moved[0]).Get("Official-Document-Id") != e.DocumentID || !bytes.Equal(moved[0], moved[1]) {
		t.Errorf("lan's %s holds %d messages, want her two copies of the document", registry.RecalledFolder, len(moved))
	}
	for _, mb := range []string{filed, kept} {
		if n := len(b.folder(t, "lan", mb)); n != 0 {
			t.Errorf("lan's %s holds %d messages after the recall", mb, n)
		}
	}
	if n := len(b.folder(t, "lan", "Trash")); n != 1 {
		t.Errorf("lan's Trash holds %d messages, want the copy she threw away left there", n)
	}
	if n := len(b.folder(t, "clerk", registry.InFolder)); n != 0 {
		t.Errorf("B's clerk's %s holds %d after the recall", registry.InFolder, n)
	}
	if n := len(b.folder(t, "clerk", registry.RecalledFolder)); n != 1 {
		t.Errorf("B's clerk's %s holds %d, want the registered copy", registry.RecalledFolder, n)
	}
	if n := len(b.inbox(t, "clerk")); n != 1 {
		t.Errorf("B's clerk's INBOX holds %d, want the recall notice", n)
	}
	if text := noticeText(t, inbox[0]); !strings.Contains(text, "Thông báo về văn bản điện tử: Nơi gửi thu hồi văn bản") ||
		!strings.Contains(text, "Official document notice: the document was recalled by the sender") || !strings.Contains(text, reason) {
		t.Errorf("the recall notice reads:\n%s", text)
	}

	b.delivered(t)
	out := a.line(t, mailstore.DocOut)
	if out.Status != registry.StatusRecalled || !strings.Contains(out.Notes, officialB+" đồng ý thu hồi") {
		t.Errorf("A's line after B's answer: %+v", out)
	}
	if ack := a.ack(t, officialB); ack.StatusCode != "15" {
		t.Errorf("B's answer recorded as %+v", ack)
	}
	if got, want := a.statuses(t, mailstore.DocOut), []string{"03 ← " + officialB, "13 → " + officialA, "15 ← " + officialB}; !slices.Equal(got, want) {
		t.Errorf("A's statuses: %q, want %q", got, want)
	}
	if got, want := b.statuses(t, mailstore.DocIn), []string{"03 → " + officialB, "13 ← " + officialA, "15 → " + officialB}; !slices.Equal(got, want) {
		t.Errorf("B's statuses: %q, want %q", got, want)
	}
	a.evidence(t, "issued SubmissionAcceptance", "received ContentConsignment 03", "issued RecallRequest 13", "received RecallAgreed 15")
	b.evidence(t, "issued ContentConsignment 03", "received RecallRequest 13", "issued RecallAgreed 15")

	// A withdrawn document is no longer processed.
	if _, err := b.docs.SetState(ctx, "", e.DocumentID, registry.StatusProcessing); !errors.Is(err, registry.ErrState) {
		t.Errorf("state of a withdrawn document: %v", err)
	}
}

// TestRecallUnknown: a recall of a document B never registered (it was lost
// on the way) is refused with 16 and the reason, which A records.
func TestRecallUnknown(t *testing.T) {
	ctx := context.Background()
	a, b := agencies(t)
	b.stopMX(t)
	a.submitFrom(t, "clerk", officialA, []string{lan}, document(t, officialA, lan, "cv.pdf", pdf(20<<10)))
	a.deferred(t)
	for _, qe := range a.queued(t) {
		if err := a.store.RemoveQueue(ctx, qe.ID); err != nil {
			t.Fatal(err)
		}
	}
	e := a.line(t, mailstore.DocOut)
	if _, err := a.docs.Recall(ctx, "", e.DocumentID, "Gửi nhầm"); err != nil {
		t.Fatal(err)
	}
	b.serveMX(t)
	if err := a.store.RetryQueueAll(ctx); err != nil {
		t.Fatal(err)
	}
	a.queue.Wake()
	a.delivered(t)
	b.delivered(t)
	if n := len(b.register(t, mailstore.DocIn)); n != 0 {
		t.Errorf("B's incoming register holds %d lines", n)
	}
	ack := a.ack(t, officialB)
	if ack.StatusCode != "16" || !strings.Contains(ack.Reason, "no such document in the incoming register") {
		t.Errorf("B's answer recorded as %+v, want 16 with the reason", ack)
	}
	if out := a.line(t, mailstore.DocOut); out.Status != registry.StatusRecalling || !strings.Contains(out.Notes, "từ chối thu hồi") {
		t.Errorf("A's line after B refused: %+v", out)
	}
	a.evidence(t, "issued SubmissionAcceptance", "issued RecallRequest 13", "received RecallRefused 16")
	b.evidence(t, "received RecallRequest 13", "issued RecallRefused 16")
}

// TestReturn: B's clerk returns a document the day it arrived; A's register
// shows it returned, with the reason.
func TestReturn(t *testing.T) {
	ctx := context.Background()
	a, b := agencies(t)
	e := released(t, a, b)
	const reason = "Gửi sai nơi nhận"
	in, err := b.docs.Return(ctx, "", e.DocumentID, reason)
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != registry.StatusReturned || !strings.Contains(in.Notes, reason) {
		t.Errorf("B's line after the return: %+v", in)
	}
	if _, err := b.docs.Return(ctx, "", e.DocumentID, reason); !errors.Is(err, registry.ErrState) {
		t.Errorf("returned twice: %v", err)
	}
	b.delivered(t)
	out := a.line(t, mailstore.DocOut)
	if out.Status != registry.StatusReturned || !strings.Contains(out.Notes, "returned by "+officialB) || !strings.Contains(out.Notes, reason) {
		t.Errorf("A's line after the return: %+v", out)
	}
	if ack := a.ack(t, officialB); ack.StatusCode != "02" || ack.Reason != reason {
		t.Errorf("B's return recorded as %+v", ack)
	}
	if got, want := a.statuses(t, mailstore.DocOut), []string{"03 ← " + officialB, "02 ← " + officialB}; !slices.Equal(got, want) {
		t.Errorf("A's statuses: %q, want %q", got, want)
	}
	clerk := a.inbox(t, "clerk")
	if len(clerk) != 3 || !strings.HasPrefix(headerOf(t, clerk[2]).Get("Official-Document-Receipt"), "Returned;") {
		t.Errorf("A's clerk's INBOX holds %d messages, want the acceptance, the receipt and the return", len(clerk))
	}
	// A recall after the return is refused: B keeps nothing to withdraw.
	if _, err := a.docs.Recall(ctx, "", e.DocumentID, "x"); !errors.Is(err, registry.ErrState) {
		t.Errorf("recall of a returned document: %v", err)
	}
}

// TestState: B's clerk reports the document assigned, in progress and done;
// A records each, and its line shows the latest.
func TestState(t *testing.T) {
	ctx := context.Background()
	a, b := agencies(t)
	e := released(t, a, b)
	if _, err := b.docs.SetState(ctx, "", e.DocumentID, "finished"); err == nil {
		t.Error("an unknown state was accepted")
	}
	for _, s := range []string{registry.StatusAssigned, registry.StatusProcessing, registry.StatusDone} {
		in, err := b.docs.SetState(ctx, "", e.DocumentID, s)
		if err != nil || in.Status != s {
			t.Fatalf("state %s: %+v, %v", s, in, err)
		}
		b.delivered(t)
	}
	if _, err := b.docs.SetState(ctx, "", e.DocumentID, registry.StatusDone); !errors.Is(err, registry.ErrState) {
		t.Errorf("done twice: %v", err)
	}
	if ack := a.ack(t, officialB); ack.StatusCode != "06" {
		t.Errorf("A's acknowledgement from B: %+v, want 06", ack)
	}
	want := []string{"03 ← " + officialB, "04 ← " + officialB, "05 ← " + officialB, "06 ← " + officialB}
	if got := a.statuses(t, mailstore.DocOut); !slices.Equal(got, want) {
		t.Errorf("A's statuses: %q, want %q", got, want)
	}
	if out := a.line(t, mailstore.DocOut); out.Status != registry.StatusSent {
		t.Errorf("A's line: %+v", out)
	}
	// The messages export as edXML status packages: 01 and 03 from the
	// registration receipt, then 04, 05, 06.
	msgs, err := a.docs.StatusMessages(ctx, a.line(t, mailstore.DocOut))
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, m := range msgs {
		codes = append(codes, m.Status.Code)
		if !strings.Contains(string(m.Data), "<edXML:StatusCode>"+m.Status.Code+"</edXML:StatusCode>") &&
			!strings.Contains(string(m.Data), "StatusCode>"+m.Status.Code+"<") {
			t.Errorf("status package %s:\n%s", m.Status.Code, m.Data)
		}
	}
	if !slices.Equal(codes, []string{"01", "03", "04", "05", "06"}) {
		t.Errorf("exported statuses %q", codes)
	}
}

// TestForgedStatus: status notices not signed by B's seal — signed by
// another key claiming B's address, or not signed at all — are refused:
// quarantined at A with the failed check named, and nothing recorded.
func TestForgedStatus(t *testing.T) {
	a, b := agencies(t)
	e := released(t, a, b)
	ev := signing.Evidence{Event: signing.Done, StatusCode: "06", DocumentID: e.DocumentID, MessageID: e.MessageID,
		Time: time.Now(), Server: "mail.agency-b.test", From: officialA, To: []string{lan}}
	d, err := b.store.Domain(context.Background(), b.domain)
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey, err := signing.NewLocalCA(d.OrganName, d.OrganID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := signing.IssueSeal(ca, caKey, registry.Agency(d), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := signing.Receipt(context.Background(), impostor, ev, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	inject(t, a, officialB, officialA, forged)
	unsigned := "From: " + officialB + "\r\nTo: " + officialA + "\r\nSubject: status\r\nMessage-Id: <unsigned@agency-b.test>\r\n" +
		"Official-Document-Receipt: Done; doc=\"" + e.DocumentID + "\"\r\n\r\n06\r\n"
	inject(t, a, officialB, officialA, []byte(unsigned))

	quarantined := a.folder(t, "clerk", registry.QuarantineFolder)
	if len(quarantined) != 2 {
		t.Fatalf("A's clerk's %s holds %d messages, want 2 notices", registry.QuarantineFolder, len(quarantined))
	}
	for i, want := range []string{"fail; check=chain", "fail; check=structure"} {
		if v := headerOf(t, quarantined[i]).Get("Official-Document"); !strings.HasPrefix(v, want) {
			t.Errorf("notice %d: Official-Document %q, want %q", i, v, want)
		}
	}
	if ack := a.ack(t, officialB); ack.StatusCode != "03" {
		t.Errorf("a forged status was recorded: %+v", ack)
	}
	if got := a.statuses(t, mailstore.DocOut); len(got) != 1 {
		t.Errorf("A's statuses after forged ones: %q", got)
	}
}

// TestUpdateReplace: A replaces a document (doc replace's path, through the
// registry) and then updates the replacement (a clerk's mail client, with
// the header fields); B's register links each to the one it corrects, as
// A's does, and the edXML export says what the package does.
func TestUpdateReplace(t *testing.T) {
	ctx := context.Background()
	a, b := agencies(t)
	first := released(t, a, b)
	if _, err := a.docs.Correct(ctx, "", "000.00.12.H10,2001/01/01,99/X", mailstore.RelationReplaces, "x", "", nil); !errors.Is(err, mailstore.ErrNotFound) {
		t.Errorf("replacing an unknown document: %v", err)
	}
	const why = "Sai số liệu tại phụ lục"
	second, err := a.docs.Correct(ctx, "", first.DocumentID, mailstore.RelationReplaces, why, "",
		[]signing.File{{Name: "cv-thay-the.pdf", ContentType: "application/pdf", Data: pdf(10 << 10)}})
	if err != nil {
		t.Fatal(err)
	}
	if second.Number != 2 || second.Relation != mailstore.RelationReplaces || second.Related != first.DocumentID ||
		!slices.Equal(second.Recipients, first.Recipients) || second.Subject != first.Subject {
		t.Errorf("A's line of the replacement: %+v", second)
	}
	a.delivered(t)

	// The update, from the clerk's mail client.
	msg := document(t, officialA, lan, "dinh-chinh.pdf", pdf(10<<10))
	msg = "Official-Document-Updates: " + second.DocumentID + "\r\nOfficial-Document-Reason: Sai ngày ban hành\r\n" + msg
	a.submitFrom(t, "clerk", officialA, []string{lan}, msg)
	a.delivered(t)

	out := a.register(t, mailstore.DocOut)
	if len(out) != 3 || out[2].Relation != mailstore.RelationUpdates || out[2].Related != second.DocumentID ||
		!strings.Contains(out[0].Notes, "replaced by "+second.DocumentID) || !strings.Contains(out[1].Notes, "updated by "+out[2].DocumentID) {
		t.Fatalf("A's outgoing register: %+v", out)
	}
	in := b.register(t, mailstore.DocIn)
	if len(in) != 3 {
		t.Fatalf("B's incoming register: %+v", in)
	}
	if in[1].Relation != mailstore.RelationReplaces || in[1].Related != first.DocumentID || !strings.Contains(in[1].Notes, why) ||
		!strings.Contains(in[0].Notes, "Được thay thế bởi / replaced by "+second.DocumentID) || !strings.Contains(in[0].Notes, "số đến 2") {
		t.Errorf("B's lines of the first document and its replacement: %+v\n%+v", in[0], in[1])
	}
	if in[2].Relation != mailstore.RelationUpdates || in[2].Related != second.DocumentID || !strings.Contains(in[1].Notes, "updated by "+out[2].DocumentID) {
		t.Errorf("B's lines of the replacement and its update: %+v\n%+v", in[1], in[2])
	}
	pkg, err := b.docs.ExportEdXML(ctx, in[2], false)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(pkg); !strings.Contains(s, "<BussinessDocType>2</BussinessDocType>") || !strings.Contains(s, second.DocumentID) {
		t.Errorf("the update's edXML package:\n%.3000s", pkg)
	}
}
