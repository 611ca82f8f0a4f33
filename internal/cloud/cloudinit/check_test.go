package cloudinit

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		limit    int
		is       error
		contains []string
	}{
		{name: "empty", data: ""},
		{name: "cloud-config", data: "#cloud-config\npackages:\n  - haproxy\nruncmd:\n  - [systemctl, start, haproxy]\n", limit: EC2Limit},
		{name: "cloud-config with only the header", data: "#cloud-config\n"},
		{name: "leading blank line and upper case", data: "\n#Cloud-Config\nhostname: a\n"},
		{name: "shell script is not parsed", data: "#!/bin/sh\necho {{ broken: [\n", limit: EC2Limit},
		{name: "mime multipart is not parsed", data: "Content-Type: multipart/mixed; boundary=\"==B==\"\nMIME-Version: 1.0\n\n--==B==\nContent-Type: text/cloud-config\n\n: : :\n--==B==--\n"},
		{name: "mime version first", data: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x--\n"},
		{name: "include", data: "#include\nhttps://example.org/cc.yaml\n"},
		{name: "boothook", data: "#cloud-boothook\n#!/bin/sh\necho hi\n"},
		{name: "cloud-config-archive is not cloud-config", data: "#cloud-config-archive\n- type: x\n"},
		{name: "jinja template header", data: "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n"},
		{name: "gzip", data: "\x1f\x8b\x08\x00rest"},
		{
			name: "yaml syntax error names the line", data: "#cloud-config\npackages:\n  - a\n runcmd: [\n",
			is: ErrInvalid, contains: []string{"#cloud-config does not parse as YAML: line 4"},
		},
		{
			name: "bad indentation deep in a list names its own line", data: "#cloud-config\npackages:\n  - a\n  - b\nruncmd:\n  - echo 1\n  - echo 2\n - echo 3\nhostname: x\n",
			is: ErrInvalid, contains: []string{"does not parse as YAML: line 8: "},
		},
		{
			name: "tab indentation", data: "#cloud-config\nwrite_files:\n\t- path: /x\n",
			is: ErrInvalid, contains: []string{"does not parse as YAML: line 3"},
		},
		{
			name: "list document", data: "#cloud-config\n- runcmd\n",
			is: ErrInvalid, contains: []string{"#cloud-config line 2: the document must be a mapping", "not a list"},
		},
		{
			name: "repeated key", data: "#cloud-config\nruncmd: [a]\npackages: [b]\nruncmd: [c]\n",
			is: ErrInvalid, contains: []string{`#cloud-config line 4: key "runcmd" repeats the one on line 2`},
		},
		{
			name: "typo in the marker", data: "#cloud_config\nruncmd: [a]\n",
			is: ErrInvalid, contains: []string{`cloud-init does not recognise the format (it starts with "#cloud_config")`},
		},
		{
			name: "plain yaml without marker does not echo content", data: "password: hunter2-secret\n",
			is: ErrInvalid, contains: []string{"does not recognise the format;"},
		},
		{
			name: "over the ec2 limit", data: "#!/bin/sh\n" + strings.Repeat("x", EC2Limit), limit: EC2Limit,
			is: ErrTooLarge, contains: []string{"16394 bytes (21860 base64-encoded), over the limit of 16384 bytes (21848 base64-encoded)"},
		},
		{name: "exactly the ec2 limit", data: "#!/bin/sh\n" + strings.Repeat("x", EC2Limit-10), limit: EC2Limit},
		{name: "nova limit in raw bytes", data: "#!/bin/sh\n" + strings.Repeat("x", NovaLimit-10), limit: NovaLimit},
		{
			name: "over the nova limit", data: "#!/bin/sh\n" + strings.Repeat("x", NovaLimit-9), limit: NovaLimit,
			is: ErrTooLarge, contains: []string{"over the limit of 49149 bytes (65532 base64-encoded)"},
		},
		{
			name: "size and yaml errors reported together", data: "#cloud-config\na: [\n" + strings.Repeat("#", 100), limit: 50,
			is: ErrTooLarge, contains: []string{"over the limit of 50 bytes", "does not parse as YAML"},
		},
		{name: "no limit", data: "#!/bin/sh\n" + strings.Repeat("x", 1<<20), limit: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.data, tt.limit)
			if tt.is == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("Check = %v, want %v", err, tt.is)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\ndoes not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error quotes user data: %q", err)
			}
		})
	}
}

func TestLimitsMatchTheirSources(t *testing.T) {
	// The nova raw limit is derived: its base64 form must fit, one more byte must not.
	enc := func(n int) int { return (n + 2) / 3 * 4 }
	if enc(NovaLimit) > NovaBase64Limit || enc(NovaLimit+1) <= NovaBase64Limit {
		t.Errorf("NovaLimit %d is not the largest raw size fitting %d base64 bytes", NovaLimit, NovaBase64Limit)
	}
	if EC2Limit != 16*1024 {
		t.Errorf("EC2Limit = %d, want 16 KiB", EC2Limit)
	}
}
