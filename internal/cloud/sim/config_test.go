package sim

import (
	"strings"
	"testing"
	"time"
)

func TestDecodeResource(t *testing.T) {
	good, err := DecodeResource(map[string]any{
		"type": "sim", "name": "x", "boot_time": "1m30s", "latency": 2, "failure_rate": 0.25,
		"api_error_rate": 0, "lose_response_rate": 1, "address_range": "10.80.0.0/16",
	})
	if err != nil {
		t.Fatalf("valid section: %v", err)
	}
	if *good.BootTime != 90*time.Second || *good.Latency != 2*time.Second || *good.FailureRate != 0.25 ||
		*good.APIErrorRate != 0 || *good.LoseResponseRate != 1 || good.AddressRange != "10.80.0.0/16" {
		t.Fatalf("decoded %+v", good)
	}
	bad := []struct {
		name string
		in   map[string]any
		want []string
	}{
		{"unknown key", map[string]any{"type": "sim", "boot": "1s"},
			[]string{"resource.boot: unknown key for type sim", "allowed: address_range, api_error_rate, boot_time"}},
		{"bad duration", map[string]any{"type": "sim", "boot_time": "soon"},
			[]string{`resource.boot_time: "soon" is not a duration`}},
		{"negative latency", map[string]any{"type": "sim", "latency": "-1s"},
			[]string{"resource.latency: -1s is negative"}},
		{"rate above 1", map[string]any{"type": "sim", "failure_rate": 1.5},
			[]string{"resource.failure_rate: 1.5 is not a probability (want a number from 0 to 1)"}},
		{"rate as text", map[string]any{"type": "sim", "api_error_rate": "often"},
			[]string{"resource.api_error_rate: often is not a probability"}},
		{"ipv6 range", map[string]any{"type": "sim", "address_range": "fd00::/64"},
			[]string{"resource.address_range", "only IPv4"}},
		{"wrong type", map[string]any{"type": "ec2"}, []string{"resource.type: ec2 is not sim"}},
		{"all errors at once", map[string]any{"type": "sim", "x": 1, "failure_rate": -1, "boot_time": true},
			[]string{"resource.x: unknown key", "resource.failure_rate: -1", "resource.boot_time: true"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeResource(tt.in)
			if err == nil {
				t.Fatalf("DecodeResource(%v) succeeded", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestBindRejectsBadResource(t *testing.T) {
	s := New(Options{})
	if _, err := s.Bind(map[string]any{"type": "sim", "speed": 3}, nil); err == nil || !strings.Contains(err.Error(), "resource.speed") {
		t.Fatalf("Bind with unknown key: err = %v", err)
	}
}
