package health

import (
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	ok := Result{OK: true, Detail: "ok"}
	bad := Result{Detail: "port 80: connection refused"}
	const timeout = 600 * time.Second
	tests := []struct {
		name      string
		prev      time.Time
		r         Result
		now       time.Time
		timeout   time.Duration
		wantState string
		wantSince time.Time
	}{
		{"healthy", time.Time{}, ok, t0, timeout, StateReady, time.Time{}},
		{"recovery clears the timer", t0, ok, t0.Add(599 * time.Second), timeout, StateReady, time.Time{}},
		{"first failure starts the timer", time.Time{}, bad, t0, timeout, StatePending, t0},
		{"still within timeout", t0, bad, t0.Add(599 * time.Second), timeout, StatePending, t0},
		{"exactly at timeout is not yet failed", t0, bad, t0.Add(timeout), timeout, StatePending, t0},
		{"past timeout", t0, bad, t0.Add(timeout + time.Second), timeout, StateFailed, t0},
		{"short custom timeout", t0, bad, t0.Add(31 * time.Second), 30 * time.Second, StateFailed, t0},
		{"zero timeout means 600s", t0, bad, t0.Add(599 * time.Second), 0, StatePending, t0},
		{"zero timeout fails after 600s", t0, bad, t0.Add(601 * time.Second), 0, StateFailed, t0},
		{"timer from the future (clock moved back) restarts", t0.Add(time.Hour), bad, t0, timeout, StatePending, t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state, since := Judge(tc.prev, tc.r, tc.now, tc.timeout)
			if state != tc.wantState || !since.Equal(tc.wantSince) {
				t.Errorf("Judge = %s, %v; want %s, %v", state, since, tc.wantState, tc.wantSince)
			}
		})
	}
}

func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	ok := Result{OK: true, Detail: "ok"}
	bad := Result{Detail: "ping 127.0.1.2: no reply"}
	tr := NewTracker()
	steps := []struct {
		id    string
		r     Result
		at    time.Duration
		state string
	}{
		{"a", bad, 0, StatePending},
		{"b", ok, 0, StateReady},
		{"a", bad, 5 * time.Second, StatePending},
		{"b", bad, 8 * time.Second, StatePending},
		{"a", bad, 11 * time.Second, StateFailed},
		{"b", ok, 12 * time.Second, StateReady},
		{"b", bad, 20 * time.Second, StatePending}, // a new failure period starts at 20s
		{"b", bad, 29 * time.Second, StatePending},
		{"b", bad, 31 * time.Second, StateFailed},
	}
	for i, s := range steps {
		if got := tr.Observe(s.id, s.r, t0.Add(s.at), 10*time.Second); got != s.state {
			t.Errorf("step %d (%s at %v): state %s, want %s", i, s.id, s.at, got, s.state)
		}
	}
	if got := tr.FailingSince("b"); !got.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("FailingSince(b) = %v, want t0+20s", got)
	}
	tr.Forget("a")
	if !tr.FailingSince("a").IsZero() {
		t.Error("Forget(a) kept its timer")
	}
	// After a restart the timer comes back from the store and keeps counting.
	tr2 := NewTracker()
	tr2.Restore("c", t0)
	if got := tr2.Observe("c", bad, t0.Add(11*time.Second), 10*time.Second); got != StateFailed {
		t.Errorf("restored timer: state %s, want failed", got)
	}
	tr2.Restore("c", time.Time{})
	if got := tr2.Observe("c", bad, t0.Add(12*time.Second), 10*time.Second); got != StatePending {
		t.Errorf("cleared timer: state %s, want pending", got)
	}
}
