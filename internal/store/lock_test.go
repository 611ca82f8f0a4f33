package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// holdEnv names the data directory a re-executed test binary holds until its stdin closes.
const holdEnv = "SKYFLEET_STORE_TEST_HOLD"

// holdStore is the child side of TestOpenLockedByChild: it opens the store in dir, holds it
// until stdin reaches EOF, then closes it.
func holdStore(dir string) int {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startHolder re-executes the test binary to hold dir and waits until its lock file names it.
func startHolder(t *testing.T, dir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	cmd.Stderr = tWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start holder: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h, err := readLockFile(dir); err == nil && h.PID == cmd.Process.Pid {
			return cmd, stdin
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("holder pid %d did not record itself in %s within 30s", cmd.Process.Pid, lockFileName)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readLockFile(dir string) (LockHolder, error) {
	var h LockHolder
	data, err := os.ReadFile(filepath.Join(dir, lockFileName))
	if err != nil {
		return h, err
	}
	err = json.Unmarshal(data, &h)
	return h, err
}

func TestLockFileNamesHolderWhileOpen(t *testing.T) {
	dir := t.TempDir()
	before := time.Now().Add(-time.Second)
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := readLockFile(dir)
	if err != nil {
		t.Fatalf("lock file while open: %v", err)
	}
	host, _ := os.Hostname()
	if h.PID != os.Getpid() || h.Host != host || h.Command != strings.Join(redactArgs(os.Args), " ") || h.Since.Before(before) {
		t.Errorf("lock file = %+v, want pid %d, host %s, our command line, a recent time", h, os.Getpid(), host)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, lockFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file still there after Close: %v", err)
	}
}

func TestOpenTwiceInProcess(t *testing.T) {
	dir := t.TempDir()
	first := openTest(t, dir)
	start := time.Now()
	_, err := Open(dir, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	t.Logf("second Open after %v: %v", time.Since(start), err)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder == nil || le.Holder.PID != os.Getpid() {
		t.Fatalf("error %v does not carry the holder (pid %d)", err, os.Getpid())
	}
	msg := err.Error()
	for _, want := range []string{
		"open store " + dir + ": data directory is in use by another process",
		fmt.Sprintf("(pid %d %q, since ", os.Getpid(), strings.Join(redactArgs(os.Args), " ")),
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir) // released: opens now
}

func TestOpenLockedByChild(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin := startHolder(t, dir)
	_, err := Open(dir, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Errorf("Open while a child holds the store = %v, want ErrLocked", err)
	} else if want := "pid " + strconv.Itoa(cmd.Process.Pid) + " "; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not name the child (%q)", err, want)
	} else if !strings.Contains(err.Error(), os.Args[0]) {
		t.Errorf("message %q does not show the child's command line", err)
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder exited with %v", err)
	}
	openTest(t, dir) // the child closed the store: it opens now
}

func TestStaleLockFileDoesNotBlock(t *testing.T) {
	t.Run("holder killed", func(t *testing.T) {
		dir := t.TempDir()
		cmd, stdin := startHolder(t, dir)
		defer stdin.Close()
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if h, err := readLockFile(dir); err != nil || h.PID != cmd.Process.Pid {
			t.Fatalf("killed holder should leave its lock file behind: %+v, %v", h, err)
		}
		openTest(t, dir)
		if h, _ := readLockFile(dir); h.PID != os.Getpid() {
			t.Errorf("lock file names pid %d after Open, want ours (%d)", h.PID, os.Getpid())
		}
	})
	t.Run("garbage lock file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, lockFileName), []byte("not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		openTest(t, dir)
	})
}

func TestLockedErrorMessages(t *testing.T) {
	since := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		err  *LockedError
		want string
	}{
		{
			"holder on this host",
			&LockedError{Holder: &LockHolder{PID: 1234, Host: "h1", Command: "skyfleet serve --data-dir /x", Since: since}, localHost: "h1"},
			`data directory is in use by another process (pid 1234 "skyfleet serve --data-dir /x", since 2026-11-29T06:00:00Z)`,
		},
		{
			"holder on another host",
			&LockedError{Holder: &LockHolder{PID: 7, Host: "h2", Command: "skyfleet serve", Since: since}, localHost: "h1"},
			`data directory is in use by another process (pid 7 on host h2 "skyfleet serve", since 2026-11-29T06:00:00Z)`,
		},
		{
			"holder unknown",
			&LockedError{Note: "holder unknown: skyfleet.lock is missing or unreadable"},
			`data directory is in use by another process (holder unknown: skyfleet.lock is missing or unreadable)`,
		},
		{
			"stale record",
			&LockedError{Holder: &LockHolder{PID: 9, Command: "skyfleet serve", Since: since}, Note: "that process is gone"},
			`data directory is in use by another process (pid 9 "skyfleet serve", since 2026-11-29T06:00:00Z; that process is gone)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tc.want)
			}
			if !errors.Is(tc.err, ErrLocked) {
				t.Error("errors.Is(err, ErrLocked) is false")
			}
		})
	}
}

func TestLockedErrorWithoutLockFile(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	if err := os.Remove(filepath.Join(dir, lockFileName)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "holder unknown") {
		t.Errorf("Open with the lock file gone = %v, want ErrLocked saying the holder is unknown", err)
	}
}

// setSchemaVersion rewrites meta/schema_version of a closed store directly.
func setSchemaVersion(t *testing.T, dir, v string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, DBFileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(v)) }); err != nil {
		t.Fatal(err)
	}
}

func schemaVersionOf(t *testing.T, dir string) string {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, DBFileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	_ = db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(keySchemaVersion)); return nil })
	return v
}

func TestSchemaVersion(t *testing.T) {
	newStore := func(t *testing.T) string {
		dir := t.TempDir()
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		putInfra(t, s, "i1")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("new file gets version 1", func(t *testing.T) {
		if v := schemaVersionOf(t, newStore(t)); v != "1" {
			t.Errorf("schema_version = %q, want 1", v)
		}
	})
	t.Run("newer file is refused", func(t *testing.T) {
		dir := newStore(t)
		setSchemaVersion(t, dir, "2")
		_, err := Open(dir, Options{})
		if !errors.Is(err, ErrSchema) {
			t.Fatalf("Open of a version 2 file = %v, want ErrSchema", err)
		}
		if want := "the data file has schema version 2, this skyfleet supports up to 1"; !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not contain %q", err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, lockFileName)); !errors.Is(err, os.ErrNotExist) {
			t.Error("a refused Open left its lock file behind")
		}
	})
	t.Run("garbage version is refused", func(t *testing.T) {
		dir := newStore(t)
		setSchemaVersion(t, dir, "two")
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), `"two"`) {
			t.Errorf("Open with schema_version \"two\" = %v, want ErrSchema quoting the value", err)
		}
	})
	t.Run("foreign bbolt file is refused", func(t *testing.T) {
		dir := t.TempDir()
		db, err := bolt.Open(filepath.Join(dir, DBFileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
		_ = db.Close()
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "not written by skyfleet") {
			t.Errorf("Open of a foreign bbolt file = %v, want ErrSchema", err)
		}
	})
	t.Run("not a bbolt file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, DBFileName), []byte(strings.Repeat("x", 8192)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "open store "+dir) {
			t.Errorf("Open of a garbage file = %v, want an error naming the directory", err)
		}
	})
}

func TestMigrations(t *testing.T) {
	var order []string
	mark := func(name string) migration {
		return migration{name: name, apply: func(tx *bolt.Tx) error {
			order = append(order, name)
			_, err := tx.Bucket(bucketMeta).CreateBucket([]byte(name))
			return err
		}}
	}
	dir := t.TempDir()
	s, err := open(dir, Options{}, schema{})
	if err != nil {
		t.Fatal(err)
	}
	putInfra(t, s, "i1")
	_ = s.Close()

	t.Run("failing migration changes nothing", func(t *testing.T) {
		order = nil
		failing := schema{migrations: []migration{mark("add_a"), {name: "broken", apply: func(*bolt.Tx) error { return errors.New("cannot") }}}}
		_, err := open(dir, Options{}, failing)
		if err == nil || !strings.Contains(err.Error(), "migrate schema 2 to 3 (broken): cannot") {
			t.Fatalf("open with a failing migration = %v", err)
		}
		if v := schemaVersionOf(t, dir); v != "1" {
			t.Errorf("schema_version after a failed migration = %s, want 1", v)
		}
	})
	t.Run("pending migrations run in order once", func(t *testing.T) {
		order = nil
		sch := schema{migrations: []migration{mark("add_a"), mark("add_b")}}
		s, err := open(dir, Options{Logger: testLogger(t)}, sch)
		if err != nil {
			t.Fatalf("open with migrations: %v", err)
		}
		view(t, s, func(tx Tx) error {
			if _, err := tx.Infra("i1"); err != nil {
				t.Errorf("data lost in migration: %v", err)
			}
			return nil
		})
		_ = s.Close()
		if !equalStrings(order, []string{"add_a", "add_b"}) {
			t.Errorf("migrations ran %v, want add_a then add_b", order)
		}
		if v := schemaVersionOf(t, dir); v != "3" {
			t.Errorf("schema_version = %s, want 3", v)
		}
		order = nil
		s, err = open(dir, Options{}, sch)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if len(order) != 0 {
			t.Errorf("reopening at the current version ran %v again", order)
		}
	})
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

func TestRedactArgs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"skyfleet serve --data-dir /x", "skyfleet serve --data-dir /x"},
		{"skyfleet serve --api-token=abc --listen :8080", "skyfleet serve --api-token=*** --listen :8080"},
		{"skyfleet serve --db-password hunter2 -v", "skyfleet serve --db-password *** -v"},
		{"skyfleet serve --secret-file", "skyfleet serve --secret-file"},
		{"skyfleet serve -key=k1 --aws-secret-key s", "skyfleet serve -key=*** --aws-secret-key ***"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := strings.Join(redactArgs(strings.Fields(tc.in)), " "); got != tc.want {
				t.Errorf("redactArgs = %q, want %q", got, tc.want)
			}
		})
	}
}
