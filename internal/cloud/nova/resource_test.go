package nova

import (
	"strings"
	"testing"
)

func validResource() map[string]any {
	return map[string]any{
		"type": "nova", "endpoint": "https://keystone.example:5000", "image_id": "img-1",
		"flavor_name": "m1.small", "project_id": "p-123",
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestIdentityEndpoint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://keystone.example:5000", "https://keystone.example:5000/v3"},
		{"https://keystone.example:5000/", "https://keystone.example:5000/v3"},
		{"https://keystone.example:5000/v3", "https://keystone.example:5000/v3"},
		{"https://keystone.example:5000/v3/", "https://keystone.example:5000/v3"},
		{"https://cloud.example/identity", "https://cloud.example/identity/v3"},
		{"https://cloud.example/identity/v3", "https://cloud.example/identity/v3"},
	}
	for _, tt := range tests {
		if got := IdentityEndpoint(tt.in); got != tt.want {
			t.Errorf("IdentityEndpoint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeResource(t *testing.T) {
	r, warnings, err := DecodeResource(with(validResource(),
		"server_name", "web-1", "key_name", "ops", "security_groups", []any{"default", "web"}, "floating_ip", "yes",
		"floating_ip_pool", "public", "network_id", "net-1", "region_name", "RegionTwo", "volume_size", 20,
		"volume_persist", true, "tenant_name", "old", "name", "label"))
	if err != nil {
		t.Fatalf("DecodeResource: %v", err)
	}
	if r.IdentityEndpoint != "https://keystone.example:5000/v3" || r.UserDomainName != "Default" || !r.FloatingIP ||
		r.FloatingIPPool != "public" || r.VolumeSize != 20 || !r.VolumePersist || strings.Join(r.SecurityGroups, ",") != "default,web" ||
		r.RegionName != "RegionTwo" || r.NetworkID != "net-1" || r.ServerName != "web-1" || r.KeyName != "ops" {
		t.Errorf("decoded %+v", r)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "tenant_name is deprecated") {
		t.Errorf("warnings = %q; want one about tenant_name", warnings)
	}
	for v, want := range map[any]bool{true: true, "x": true, 1: true, false: false, "no": false, "": false, 0: false} {
		r, _, err := DecodeResource(with(validResource(), "floating_ip", v))
		if err != nil || r.FloatingIP != want {
			t.Errorf("floating_ip: %#v → %v, %v; want %v", v, r.FloatingIP, err, want)
		}
	}

	tests := []struct {
		name string
		in   map[string]any
		want []string
	}{
		{"unknown key", with(validResource(), "instance_type", "t3"), []string{"resource.instance_type: unknown key (allowed: endpoint, flavor_name,"}},
		{"missing keys all at once", with(validResource(), "project_id", nil, "flavor_name", nil),
			[]string{"resource.project_id: missing", "resource.flavor_name: missing"}},
		{"keystone v2", with(validResource(), "endpoint", "https://keystone.example:5000/v2.0"), []string{"is not a Keystone v3 endpoint"}},
		{"endpoint not a URL", with(validResource(), "endpoint", "keystone:5000"), []string{`resource.endpoint: "keystone:5000" is not an http(s) URL`}},
		{"volume size", with(validResource(), "volume_size", -1), []string{"resource.volume_size: -1 is not allowed"}},
		{"volume size fraction", with(validResource(), "volume_size", 1.5), []string{"resource.volume_size: 1.5 is not allowed"}},
		{"volume persist", with(validResource(), "volume_persist", "maybe"), []string{"resource.volume_persist: maybe is not allowed; want true or false"}},
		{"security groups", with(validResource(), "security_groups", []any{"a", 3}), []string{"resource.security_groups[1]: 3 is not a security group name"}},
		{"wrong type", with(validResource(), "type", "ec2"), []string{`resource.type: "ec2" is not nova`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeResource(tt.in)
			if err == nil {
				t.Fatal("DecodeResource succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	got := DefaultName("a-very-long-infrastructure-name", "0123456789abcdef", "application-server-node", "fedcba98-7654-3210")
	if want := "skyfleet-a-very-long-infras-01234567-application-server-fedcba98"; got != want {
		t.Errorf("DefaultName = %q, want %q", got, want)
	}
}
