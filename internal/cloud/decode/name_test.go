package decode

import (
	"strings"
	"testing"
)

func TestVMName(t *testing.T) {
	tests := []struct {
		name                            string
		infraName, infraID, node, token string
		want                            string
	}{
		{"long parts are cut", "a-very-long-infrastructure-name", "0123456789abcdef", "application-server-node", "fedcba98-7654-3210",
			"skyfleet-a-very-long-infras-01234567-application-server-fedcba98"},
		{"short parts are kept", "demo", "i1", "web", "t1", "skyfleet-demo-i1-web-t1"},
		{"characters, not bytes", strings.Repeat("é", 21), "i", "n", "t", "skyfleet-" + strings.Repeat("é", 18) + "-i-n-t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VMName(tt.infraName, tt.infraID, tt.node, tt.token); got != tt.want {
				t.Errorf("VMName = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abcdef", 3, "abc"},
		{"abc", 3, "abc"},
		{"ab", 3, "ab"},
		{"日本語の名前", 2, "日本"},
		{"abc", 0, ""},
		{"abc", -1, ""},
	}
	for _, tt := range tests {
		if got := Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q; want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
