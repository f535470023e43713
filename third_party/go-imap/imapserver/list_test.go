package imapserver_test

import (
	"strings"
	"time"

	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
)

var matchListTests = []struct {
	name, ref, pattern string
	result             bool
}{
	{name: "INBOX", pattern: "INBOX", result: true},
	{name: "INBOX", pattern: "Asuka", result: false},
	{name: "INBOX", pattern: "*", result: true},
	{name: "INBOX", pattern: "%", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "*", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "%", result: false},
	{name: "Neon Genesis Evangelion/Misato", pattern: "Neon Genesis Evangelion/*", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "Neon Genesis Evangelion/%", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "Neo* Evangelion/Misato", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "Neo% Evangelion/Misato", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "*Eva*/Misato", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "%Eva%/Misato", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "*X*/Misato", result: false},
	{name: "Neon Genesis Evangelion/Misato", pattern: "%X%/Misato", result: false},
	{name: "Neon Genesis Evangelion/Misato", pattern: "Neon Genesis Evangelion/Mi%o", result: true},
	{name: "Neon Genesis Evangelion/Misato", pattern: "Neon Genesis Evangelion/Mi%too", result: false},
	{name: "Misato/Misato", pattern: "Mis*to/Misato", result: true},
	{name: "Misato/Misato", pattern: "Mis*to", result: true},
	{name: "Misato/Misato/Misato", pattern: "Mis*to/Mis%to", result: true},
	{name: "Misato/Misato", pattern: "Mis**to/Misato", result: true},
	{name: "Misato/Misato", pattern: "Misat%/Misato", result: true},
	{name: "Misato/Misato", pattern: "Misat%Misato", result: false},
	{name: "Misato/Misato", ref: "Misato", pattern: "Misato", result: true},
	{name: "Misato/Misato", ref: "Misato/", pattern: "Misato", result: true},
	{name: "Misato/Misato", ref: "Shinji", pattern: "/Misato/*", result: true},
	{name: "Misato/Misato", ref: "Misato", pattern: "/Misato", result: false},
	{name: "Misato/Misato", ref: "Misato", pattern: "Shinji", result: false},
	{name: "Misato/Misato", ref: "Shinji", pattern: "Misato", result: false},
}

func TestMatchList(t *testing.T) {
	delim := '/'
	for _, test := range matchListTests {
		result := imapserver.MatchList(test.name, delim, test.ref, test.pattern)
		if result != test.result {
			t.Errorf("matching name %q with pattern %q and reference %q returns %v, but expected %v", test.name, test.pattern, test.ref, result, test.result)
		}
	}
}

// sealmail: the matcher must take time linear in the pattern and the name,
// however many wildcards the pattern repeats (it used to backtrack).
func TestMatchListLinear(t *testing.T) {
	name := strings.Repeat("Phòng Tổ chức/", 20) + strings.Repeat("a", 200)
	for _, pattern := range []string{
		strings.Repeat("%*", 40) + "x",
		strings.Repeat("*a", 300) + "b",
		strings.Repeat("%a", 100) + "%b",
		strings.Repeat("*P", 20) + strings.Repeat("*", 1000) + "b",
	} {
		done := make(chan bool, 1)
		go func() { done <- imapserver.MatchList(name, '/', "", pattern) }()
		select {
		case got := <-done:
			if got {
				t.Errorf("pattern %.40q… matched", pattern)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("pattern %.40q… still matching after 10 s", pattern)
		}
	}
	if !imapserver.MatchList(name, '/', "", strings.Repeat("%*", 40)+"a") {
		t.Error("wildcards then a literal: no match")
	}
}

func TestMatchListMore(t *testing.T) {
	for _, test := range []struct {
		name, pattern string
		result        bool
	}{
		{"a/b/c", "%/%", false},
		{"a/b/c", "%/%/%", true},
		{"a/b/c", "%*%", true},
		{"a/b/c", "a%c", false},
		{"a/b/c", "a*c", true},
		{"", "%", true},
		{"", "", true},
		{"x", "", false},
		{"Đà Nẵng/Hồ sơ", "Đà%/H*", true},
		{"Đà Nẵng/Hồ sơ", "Đà%/h*", false},
		{"a\x00b", "a\x00%", true},
		{"a%b", "a%b", true},
	} {
		if got := imapserver.MatchList(test.name, '/', "", test.pattern); got != test.result {
			t.Errorf("MatchList(%q, %q) = %v, want %v", test.name, test.pattern, got, test.result)
		}
	}
}
