package health

import (
	"sync"
	"time"
)

// Health states Judge returns; they are the store's instance state names.
const (
	StateReady   = "ready"
	StatePending = "pending"
	StateFailed  = "failed"
)

// Judge is Occopus' failure timer as a pure function. Given when the instance started
// failing (zero: it was healthy), the latest result and the current time, it returns the
// instance's health state and the new failing-since time:
//
//   - r.OK: "ready", and the timer is cleared (zero time);
//   - failing for at most timeout: "pending", the timer starts at now if it was not running;
//   - failing continuously for longer than timeout: "failed".
//
// timeout <= 0 means DefaultTimeout. Store the returned time with the instance so the timer
// survives a restart. Results with Aborted set say nothing about the instance and should not
// be judged; Judge counts them as failures.
func Judge(prevFailingSince time.Time, r Result, now time.Time, timeout time.Duration) (state string, failingSince time.Time) {
	if r.OK {
		return StateReady, time.Time{}
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	failingSince = prevFailingSince
	if failingSince.IsZero() || failingSince.After(now) {
		failingSince = now
	}
	if now.Sub(failingSince) > timeout {
		return StateFailed, failingSince
	}
	return StatePending, failingSince
}

// Tracker keeps the failure timer of many instances in memory, keyed by instance id. It is
// safe for concurrent use. The clock is the caller's: every call takes now.
type Tracker struct {
	mu    sync.Mutex
	since map[string]time.Time
}

// NewTracker returns a Tracker with no timers running.
func NewTracker() *Tracker { return &Tracker{since: map[string]time.Time{}} }

// Observe judges result r of instance id at now (see Judge) and returns its state.
func (t *Tracker) Observe(id string, r Result, now time.Time, timeout time.Duration) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	state, since := Judge(t.since[id], r, now, timeout)
	if since.IsZero() {
		delete(t.since, id)
	} else {
		t.since[id] = since
	}
	return state
}

// FailingSince returns when instance id started failing, or the zero time if it is not
// failing (or unknown).
func (t *Tracker) FailingSince(id string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.since[id]
}

// Restore sets the timer of instance id, e.g. from the store after a restart; a zero since
// clears it.
func (t *Tracker) Restore(id string, since time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if since.IsZero() {
		delete(t.since, id)
		return
	}
	t.since[id] = since
}

// Forget drops instance id (it was destroyed).
func (t *Tracker) Forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.since, id)
}
