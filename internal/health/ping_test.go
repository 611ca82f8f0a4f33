package health

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requirePing returns the ping binary, skipping when it is missing unless integration tests
// are required.
func requirePing(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ping")
	if err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("ping binary required (SKYFLEET_REQUIRE_INTEGRATION is set): %v", err)
		}
		t.Skip("ping binary not installed")
	}
	return path
}

// fakePing writes a script standing in for ping that prints out and exits with code.
func fakePing(t *testing.T, out string, code int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ping")
	script := "#!/bin/sh\necho '" + out + "' >&2\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecPingerLoopback(t *testing.T) {
	path := requirePing(t)
	for _, addr := range []string{"127.0.0.1", "127.3.4.5"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := ExecPinger{Path: path}.Ping(ctx, addr)
		cancel()
		if err != nil {
			t.Errorf("ping %s with %s: %v", addr, path, err)
		}
	}
}

func TestExecPingerFailures(t *testing.T) {
	tests := []struct {
		name string
		path string
		addr string
		want string
	}{
		{"no reply", fakePing(t, "1 packets transmitted, 0 received", 1), "127.0.0.1", "no reply"},
		{"other error shows ping's message", fakePing(t, "ping: nohost: Name or service not known", 2), "nohost", "ping: nohost: Name or service not known"},
		{"option-like address refused", fakePing(t, "", 0), "-f", `"-f" is not an address`},
		{"empty address refused", fakePing(t, "", 0), "", `"" is not an address`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ExecPinger{Path: tc.path}.Ping(context.Background(), tc.addr)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Ping = %v, want %q", err, tc.want)
			}
		})
	}
	// Through a Checker the reason reads as the user sees it.
	c := NewChecker(CheckerOptions{Pinger: ExecPinger{Path: tests[0].path}})
	if r := c.Check(context.Background(), "127.0.0.1", Spec{Ping: true}); r.Detail != "ping 127.0.0.1: no reply" {
		t.Errorf("Check detail = %q", r.Detail)
	}
}

func TestICMPPingerLoopback(t *testing.T) {
	modes := []struct {
		name       string
		privileged bool
		network    string
	}{
		{"datagram socket", false, "udp4"},
		{"raw socket", true, "ip4:icmp"},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			if !canListen(m.network) {
				// Not an installed binary but the kernel's permission (ping_group_range, CAP_NET_RAW).
				t.Skipf("this process may not open an ICMP %s socket", m.network)
			}
			p := &ICMPPinger{Privileged: m.privileged}
			for _, addr := range []string{"127.0.0.1", "127.3.4.5", "::1", "localhost"} {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := p.Ping(ctx, addr)
				cancel()
				if errors.Is(err, errSocket) && strings.Contains(addr, ":") {
					t.Logf("no IPv6 ICMP socket here: %v", err)
					continue
				}
				if err != nil {
					t.Errorf("ping %s: %v", addr, err)
				}
			}
		})
	}
}

func TestICMPPingerStopsWithContext(t *testing.T) {
	p := &ICMPPinger{Privileged: !canListen("udp4")}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Ping(ctx, "127.0.0.1"); !errors.Is(err, context.Canceled) && !errors.Is(err, errSocket) {
		t.Errorf("Ping with a cancelled context = %v, want context.Canceled", err)
	}
	if err := p.Ping(context.Background(), "-i0"); err == nil {
		t.Error("an option-like address was accepted")
	}
}

func TestAutoPingerLoopback(t *testing.T) {
	a := NewAutoPinger(nil)
	t.Logf("ping method: %s", a.Method())
	if a.Method() == "none" {
		requirePing(t) // skips, or fails when integration is required
	}
	for _, addr := range []string{"127.0.0.1", "127.0.1.7"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := a.Ping(ctx, addr)
		cancel()
		if err != nil {
			t.Errorf("ping %s (%s): %v", addr, a.Method(), err)
		}
	}
	r := NewChecker(CheckerOptions{Pinger: a}).Check(context.Background(), "127.0.0.1", Spec{Ping: true})
	if !r.OK || r.Detail != "ok" {
		t.Errorf("Check(ping 127.0.0.1) = %+v", r)
	}
}
