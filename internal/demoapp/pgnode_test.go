package demoapp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requirePostgres returns the PostgreSQL binary directory, skipping the test when there is
// none, unless SKYFLEET_REQUIRE_INTEGRATION is set.
func requirePostgres(t *testing.T) string {
	t.Helper()
	bin, err := FindPostgresBin("")
	if err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") == "" {
			t.Skipf("no PostgreSQL: %v", err)
		}
		t.Fatalf("SKYFLEET_REQUIRE_INTEGRATION is set: %v", err)
	}
	return bin
}

// loopbackAddr picks a random 127.x.y.z address and a port free on it.
func loopbackAddr(t *testing.T) (string, int) {
	t.Helper()
	for range 20 {
		ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			continue
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		return ip, port
	}
	t.Fatal("no free loopback address")
	return "", 0
}

// runningPostgres is a PostgresNode started for a test.
type runningPostgres struct {
	url  string
	dir  string
	stop func() error
}

// startPostgres runs a PostgresNode in a temporary directory and waits until it is ready.
func startPostgres(t *testing.T, dir string) *runningPostgres {
	t.Helper()
	bin := requirePostgres(t)
	ip, port := loopbackAddr(t)
	ready := make(chan struct{})
	node := &PostgresNode{
		DataDir: dir, Listen: ip, Port: port, BinDir: bin,
		Stdout: tWriter{t}, Stderr: tWriter{t}, Logger: testLogger(t),
		Ready: func() { close(ready) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case <-ready:
	case err := <-done:
		stopped = true
		cancel()
		t.Fatalf("PostgreSQL node ended before it was ready: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("PostgreSQL node not ready within 90s")
	}
	return &runningPostgres{
		url:  fmt.Sprintf("postgres://skyfleet@%s/skyfleet?sslmode=disable", net.JoinHostPort(ip, fmt.Sprint(port))),
		dir:  dir,
		stop: stop,
	}
}

// TestPostgresNodeWithApp runs the real database node, the app against it, and a
// transfer from the storage role; then restarts the node on the same directory and finds
// the data still there.
func TestPostgresNodeWithApp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pgdata")
	above := []string{filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))}
	modes := map[string]os.FileMode{}
	for _, d := range above {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		modes[d] = fi.Mode().Perm()
	}
	// The leftover of an interrupted initdb is cleared, not mistaken for a cluster.
	if err := os.MkdirAll(dir+".initdb", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir+".initdb", "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := startPostgres(t, dir)
	if _, err := os.Stat(dir + ".initdb"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the initdb work directory is still there: %v", err)
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses root: the cluster must belong to the unprivileged user.
		fi, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Fatal("running as root, the cluster files belong to root; want the postgres user")
		}
		// The private directories above it were opened to that user alone, not to everyone.
		for _, d := range above {
			fi, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if _, aerr := readACL(d); aerr == nil && fi.Mode().Perm()&0o007 != modes[d]&0o007 {
				t.Errorf("%s: others' permissions changed from %v to %v although the filesystem has ACLs", d, modes[d], fi.Mode().Perm())
			}
		}
	}

	store, err := NewPGStore(PGOptions{URL: pg.url, DemoKey: DemoKey})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d := newDemo(t, store, true)

	const size = 64 << 20
	uri := d.storage.URL + "/objects/pg?size=64M"
	resp, got, n, _ := d.get(t, "/blacktop3/rest/file", map[string]string{"X-Key": DemoKey, "X-URI": uri, "TE": "trailers"})
	want := sha(objectBytes("pg", size, 0, size))
	if resp.StatusCode != 200 || n != size || got != want {
		t.Fatalf("transfer: status %d, %d bytes; want 200 with the 64 MiB object", resp.StatusCode, n)
	}
	if resp.Trailer.Get(DigestTrailer) != want {
		t.Fatalf("digest trailer %q, want %q", resp.Trailer.Get(DigestTrailer), want)
	}
	resp, _, _, body := d.get(t, "/rest/file", map[string]string{"X-Key": "00000000-0000-0000-0000-000000000000", "X-URI": uri})
	if resp.StatusCode != 401 {
		t.Fatalf("unknown key: status %d (%s), want 401", resp.StatusCode, body)
	}
	resp, _, _, _ = d.get(t, "/rest/file", map[string]string{"X-Key": DemoKey, "X-URI": uri, "Range": "bytes=0-99"})
	if resp.StatusCode != 206 {
		t.Fatalf("range: status %d, want 206", resp.StatusCode)
	}
	if resp, _, _, _ = d.get(t, "/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("/healthz with the database up: %d, want 200", resp.StatusCode)
	}

	ctx := context.Background()
	recs, err := store.Transfers(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d transfers recorded, want 2 (the full one and the range; not the refused one)", len(recs))
	}
	full := recs[1]
	if full.Status != StatusOK || full.Bytes != size || full.URI != d.storage.URL+"/objects/pg" || full.NodeID != "app-1" || full.Key != DemoKey {
		t.Fatalf("recorded %+v; want ok, %d bytes, URI without query, node app-1", full, size)
	}
	if recs[0].Bytes != 100 {
		t.Fatalf("range transfer recorded with %d bytes, want 100", recs[0].Bytes)
	}

	// A second app instance initialising the same database is harmless (idempotent schema).
	if err := store.Init(ctx); err != nil {
		t.Fatalf("second Init: %v", err)
	}

	// Stop and start again on the same directory: no initdb, the rows survive.
	store.Close()
	if err := pg.stop(); err != nil {
		t.Fatalf("stop PostgreSQL node: %v", err)
	}
	pg2 := startPostgres(t, dir)
	conn, err := pgx.Connect(ctx, pg2.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var count int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM transfers").Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 2 {
		t.Fatalf("after a restart %d transfers, want 2", count)
	}
	var super bool
	if err := conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatal(err)
	}
	if super {
		t.Error("the skyfleet role is a superuser; want an ordinary login role")
	}
}

func TestPostgresNodeMissingBinaries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		binDir string
		glob   []string
	}{
		{"explicit dir without binaries", t.TempDir(), nil},
		{"nothing installed", "", []string{filepath.Join(t.TempDir(), "16", "bin")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			node := &PostgresNode{DataDir: t.TempDir(), BinDir: tc.binDir, Logger: testLogger(t), globBins: func() []string { return tc.glob }}
			err := node.Run(context.Background())
			if !errors.Is(err, ErrPostgresMissing) || !strings.Contains(err.Error(), "apt-get install postgresql") {
				t.Fatalf("Run = %v; want ErrPostgresMissing saying what to install", err)
			}
		})
	}
}

func TestFindPostgresBinPrefersNewest(t *testing.T) {
	root := t.TempDir()
	var dirs []string
	for _, v := range []string{"9.6", "16", "13"} {
		d := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(filepath.Join(d, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		dirs = append(dirs, d)
	}
	got, err := findPostgresBin("", func() []string { return dirs })
	if err != nil || got != filepath.Join(root, "16", "bin") {
		t.Fatalf("findPostgresBin = %q, %v; want the version 16 directory", got, err)
	}
}

func TestPostgresNodeBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		node PostgresNode
		want string
	}{
		{"listen not an IP", PostgresNode{DataDir: "x", Listen: "db.example"}, "not an IP address"},
		{"port", PostgresNode{DataDir: "x", Port: 70000}, "outside 1..65535"},
		{"no dir", PostgresNode{}, "no data directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.node
			n.Logger = testLogger(t)
			err := n.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPostgresNodeRefusesForeignFiles(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	node := &PostgresNode{DataDir: dir, BinDir: bin, Logger: testLogger(t)}
	err := node.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "holds files but no cluster") {
		t.Fatalf("Run = %v; want a refusal to initialise over foreign files", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatalf("the foreign file is gone: %v", err)
	}
}
