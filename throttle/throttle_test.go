package throttle

import (
	"testing"
	"time"
)

func TestLogins(t *testing.T) {
	l := &Logins{Free: 2, Window: 50 * time.Millisecond, Max: 4 * time.Second}
	for i := 0; i < 2; i++ {
		l.Fail("1.2.3.4", "a@x")
	}
	if d := l.Delay("1.2.3.4"); d != time.Second {
		t.Errorf("after free failures: %v", d)
	}
	for i := 0; i < 10; i++ {
		l.Fail("1.2.3.4")
	}
	if d := l.Delay("9.9.9.9", "1.2.3.4"); d != 4*time.Second {
		t.Errorf("capped delay: %v", d)
	}
	if d := l.Delay("9.9.9.9"); d != 0 {
		t.Errorf("other IP delayed: %v", d)
	}
	l.Succeed("a@x")
	if d := l.Delay("a@x"); d != 0 {
		t.Errorf("after success: %v", d)
	}
	time.Sleep(60 * time.Millisecond)
	if d := l.Delay("1.2.3.4"); d != 0 {
		t.Errorf("failures not forgotten: %v", d)
	}
}
