package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockFileName is the file in the data directory that names the process holding it. bbolt's
// flock on the data file is what actually excludes a second process; this file only lets the
// loser say who the winner is, so a stale one left by a dead process never blocks anything.
const lockFileName = "skyfleet.lock"

// LockHolder describes the process that holds a data directory, as it wrote itself into the
// directory's skyfleet.lock file.
type LockHolder struct {
	PID  int    `json:"pid"`
	Host string `json:"host"`
	// Command is the holder's command line, values of secret-looking flags replaced by ***.
	Command string `json:"command"`
	// Since is when the holder opened the store.
	Since time.Time `json:"since"`
}

// LockedError is returned (wrapped) by Open when another process holds the data directory.
// errors.Is(err, ErrLocked) is true for it.
type LockedError struct {
	// Dir is the data directory.
	Dir string
	// Holder is what the lock file says about the holder; nil when the file is missing or
	// unreadable.
	Holder *LockHolder
	// Note explains a missing or doubtful Holder ("" when Holder is trustworthy).
	Note string
	// localHost is this machine's host name, to mention the holder's host only when it differs.
	localHost string
}

// Error describes the holder: pid, command line and since when it holds the directory.
func (e *LockedError) Error() string {
	var b strings.Builder
	b.WriteString(ErrLocked.Error())
	b.WriteString(" (")
	if h := e.Holder; h != nil {
		fmt.Fprintf(&b, "pid %d", h.PID)
		if h.Host != "" && h.Host != e.localHost {
			fmt.Fprintf(&b, " on host %s", h.Host)
		}
		fmt.Fprintf(&b, " %q, since %s", h.Command, h.Since.UTC().Format(time.RFC3339))
		if e.Note != "" {
			b.WriteString("; ")
		}
	}
	b.WriteString(e.Note)
	b.WriteString(")")
	return b.String()
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// currentHolder describes this process.
func currentHolder(now time.Time) LockHolder {
	host, _ := os.Hostname()
	return LockHolder{
		PID:     os.Getpid(),
		Host:    host,
		Command: strings.Join(redactArgs(os.Args), " "),
		Since:   now.UTC(),
	}
}

// secretFlagWords mark a command-line flag whose value must not be shown to another
// process or written into the lock file.
var secretFlagWords = []string{"pass", "secret", "token", "key", "credential"}

// redactArgs replaces the values of secret-looking flags ("--api-token=x", "--password x")
// with "***".
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		secret := false
		for _, w := range secretFlagWords {
			if strings.Contains(strings.ToLower(name), w) {
				secret = true
				break
			}
		}
		switch {
		case !secret:
		case hasValue:
			out[i] = a[:strings.Index(a, "=")+1] + "***"
		case i+1 < len(out) && !strings.HasPrefix(out[i+1], "-"):
			out[i+1] = "***"
			i++
		}
	}
	return out
}

// writeLockFile records h in dir's lock file. It is called only while holding the flock, so
// it may overwrite whatever a previous (dead) holder left. The write goes through a temporary
// file and a rename so a reader never sees half a file.
func writeLockFile(dir string, h LockHolder) error {
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, lockFileName+".*")
	if err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write lock file: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, lockFileName)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write lock file: %w", err)
	}
	return nil
}

// lockedError builds the error for a directory whose flock another process holds, reading
// the holder from the lock file.
func lockedError(dir string) *LockedError {
	host, _ := os.Hostname()
	e := &LockedError{Dir: dir, localHost: host}
	data, err := os.ReadFile(filepath.Join(dir, lockFileName))
	if err != nil {
		e.Note = "holder unknown: " + lockFileName + " is missing or unreadable"
		return e
	}
	var h LockHolder
	if err := json.Unmarshal(data, &h); err != nil || h.PID <= 0 {
		e.Note = "holder unknown: " + lockFileName + " is not valid"
		return e
	}
	e.Holder = &h
	// The flock is held by someone, but the file may still name a previous holder if the new
	// one has not written it yet. Say so rather than point at the wrong process.
	if (h.Host == "" || h.Host == host) && !processAlive(h.PID) {
		e.Note = "that process is gone; the new holder has not recorded itself yet"
	}
	return e
}

// processAlive reports whether a process with that pid exists on this machine.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
