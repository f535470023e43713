package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sealmail/mailstore"
	"sealmail/registry"
)

// TestDocLifecycle: recall, return and state from the command line, for
// documents an agency sent itself (so each answer is filed in the same
// step), and the statuses 'doc status' lists.
func TestDocLifecycle(t *testing.T) {
	data := agencyData(t)
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = documentID(t, sendDocument(t, data, i+1))
	}
	statuses := func(id string, i int) (string, []string) {
		st := decode[statusJSON](t, ok(t, "", "doc", "status", id, "--json", "--data", data))
		var codes []string
		for _, s := range st.Entries[i].Statuses {
			codes = append(codes, s.Code)
		}
		return st.Entries[i].Status, codes
	}

	fails(t, "", []string{"doc", "recall", ids[0], "--data", data}, "needs its reason")
	out := ok(t, "", "doc", "recall", ids[0], "--reason", "Sai thẩm quyền", "--data", data)
	if !strings.Contains(out, "recall sent") || !strings.Contains(out, "status recalled") {
		t.Errorf("doc recall printed %q", out)
	}
	// entries: in (withdrawn at once), then out (recalled: the only
	// recipient agreed in the same step).
	if st, codes := statuses(ids[0], 1); st != registry.StatusRecalled || !slices.Equal(codes, []string{"03", "13", "15"}) {
		t.Errorf("sent line after the recall: %s %q", st, codes)
	}
	if st, codes := statuses(ids[0], 0); st != registry.StatusWithdrawn || !slices.Equal(codes, []string{"03", "13", "15"}) {
		t.Errorf("received line after the recall: %s %q", st, codes)
	}
	fails(t, "", []string{"doc", "recall", ids[0], "--reason", "x", "--data", data}, "not sent")
	if txt := ok(t, "", "doc", "status", ids[0], "--data", data); !strings.Contains(txt, "Đồng ý thu hồi, cập nhật / recall or update agreed") {
		t.Errorf("doc status:\n%s", txt)
	}

	ok(t, "", "doc", "return", ids[1], "--reason", "Gửi nhầm", "--data", data)
	if st, codes := statuses(ids[1], 1); st != registry.StatusReturned || !slices.Equal(codes, []string{"03", "02"}) {
		t.Errorf("sent line after the return: %s %q", st, codes)
	}
	fails(t, "", []string{"doc", "return", ids[1], "--reason", "x", "--data", data}, "only a document just received")

	fails(t, "", []string{"doc", "state", ids[2], "finished", "--data", data}, "want assigned, processing or done")
	fails(t, "", []string{"doc", "state", "000.00.12.H10,2001/01/01,99/X", "done", "--data", data}, "no document")
	ok(t, "", "doc", "state", ids[2], "processing", "--data", data)
	ok(t, "", "doc", "state", ids[2], "done", "--data", data)
	if st, codes := statuses(ids[2], 0); st != registry.StatusDone || !slices.Equal(codes, []string{"03", "05", "06"}) {
		t.Errorf("received line after its states: %s %q", st, codes)
	}

	// doc replace, then doc update: both registers link them.
	file := filepath.Join(t.TempDir(), "cv-moi.pdf")
	if err := os.WriteFile(file, signedPDF(t, 9), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, "", []string{"doc", "replace", ids[2], "--file", file, "--data", data}, "missing --reason")
	fails(t, "", []string{"doc", "replace", ids[0], "--file", file, "--reason", "x", "--data", data}, "recalled: there is nothing to correct")
	ok(t, "", "doc", "replace", ids[2], "--file", file, "--reason", "Sai số liệu", "--subject", "Công văn 3 (thay thế)", "--data", data)
	sent := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--outgoing", "--json", "--data", data))
	if len(sent) != 4 || sent[3].Relation != mailstore.RelationReplaces || sent[3].Related != ids[2] || sent[3].Subject != "Công văn 3 (thay thế)" ||
		!strings.Contains(sent[2].Notes, "replaced by "+sent[3].DocumentID) {
		t.Fatalf("outgoing register after doc replace: %+v", sent)
	}
	ok(t, "", "doc", "update", sent[3].DocumentID, "--file", file, "--reason", "Sai ngày", "--data", data)
	in := decode[[]docJSON](t, ok(t, "", "doc", "register", "list", "--incoming", "--json", "--data", data))
	if len(in) != 5 || in[3].Relation != mailstore.RelationReplaces || in[4].Relation != mailstore.RelationUpdates || in[4].Related != sent[3].DocumentID ||
		!strings.Contains(in[3].Notes, "updated by") || !strings.Contains(in[2].Notes, "replaced by") {
		t.Errorf("incoming register after doc replace and update: %+v", in)
	}
}
