package signing

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestResultReport(t *testing.T) {
	a := newPKI(t, agencyA, testNow, testNow)
	res, _ := Verify(stamped(t, a.seal, testNow), options(testNow, map[Agency]*pki{agencyA: a}))
	text := res.String()
	ls := lines(text)
	if len(ls) != 1+8 || !strings.HasPrefix(ls[0], "VERIFIED") || !strings.Contains(ls[0], "123/STTTT-VP") {
		t.Errorf("text report:\n%s", text)
	}
	if !strings.HasPrefix(ls[len(ls)-1], "SKIP revocation [no-revocation-info]") {
		t.Errorf("last line %q", ls[len(ls)-1])
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		OK       bool
		Checks   []Check
		Manifest struct{ DocumentID string }
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !back.OK || len(back.Checks) != 8 || back.Manifest.DocumentID != res.Manifest.DocumentID {
		t.Errorf("JSON report: %s", data)
	}
}
