package imapd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Issue 15, defect 4: LIST with many wildcards over many folders took time
// exponential in the number of wildcards ("%*" 8 times over 900 folders: 109 s).
func TestListManyWildcards(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 900 {
		name := fmt.Sprintf("Phòng %d/Hồ sơ %d/Năm %d", i%30, i, 2000+i%25)
		if _, err := e.store.CreateMailbox(ctx, e.accts[0].ID, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	r := e.raw(t)
	if _, st := r.cmd(`LOGIN nam@example.test pw`); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	for _, pattern := range []string{strings.Repeat("%*", 8) + "x", strings.Repeat("%*", 40) + "x", strings.Repeat("*%", 40) + "5"} {
		start := time.Now()
		r.c.SetDeadline(time.Now().Add(30 * time.Second))
		lines, st := r.cmd(`LIST "" "` + pattern + `"`)
		if !strings.HasPrefix(st, "OK") {
			t.Fatalf("LIST %s: %s", pattern, st)
		}
		if strings.HasSuffix(pattern, "x") && len(lines) != 0 {
			t.Errorf("LIST %s: %d matches, want none", pattern, len(lines))
		}
		if strings.HasSuffix(pattern, "5") && len(lines) == 0 {
			t.Errorf("LIST %s: no match", pattern)
		}
		t.Logf("LIST %.12s… over 900 folders: %v", pattern, time.Since(start))
	}
}
