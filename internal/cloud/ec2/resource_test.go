package ec2

import (
	"strings"
	"testing"
)

func validResource() map[string]any {
	return map[string]any{
		"type": "ec2", "endpoint": "https://ec2.eu-west-1.amazonaws.com", "regionname": "eu-west-1",
		"image_id": "ami-0abcdef1234567890", "instance_type": "t3.small",
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

func TestDecodeResource(t *testing.T) {
	r, err := DecodeResource(with(validResource(),
		"key_name", "ops", "security_group_ids", []any{"sg-1", "sg-2"}, "subnet_id", "subnet-9",
		"name", "web-1", "tags", map[string]any{"team": "web", "cost": 42}))
	if err != nil {
		t.Fatalf("DecodeResource: %v", err)
	}
	if r.RegionName != "eu-west-1" || r.KeyName != "ops" || strings.Join(r.SecurityGroupIDs, ",") != "sg-1,sg-2" ||
		r.SubnetID != "subnet-9" || r.Name != "web-1" || r.Tags["team"] != "web" || r.Tags["cost"] != "42" {
		t.Errorf("decoded %+v", r)
	}

	tests := []struct {
		name string
		in   map[string]any
		want []string
	}{
		{"unknown key", with(validResource(), "flavor_name", "m1.small"),
			[]string{"resource.flavor_name: unknown key (allowed: endpoint, image_id, instance_type, key_name, name, regionname, security_group_ids, subnet_id, tags, type)"}},
		{"missing keys all at once", with(validResource(), "regionname", nil, "image_id", nil),
			[]string{"resource.regionname: missing", "resource.image_id: missing"}},
		{"empty value", with(validResource(), "instance_type", ""), []string{"resource.instance_type: must not be empty"}},
		{"wrong type", with(validResource(), "type", "nova"), []string{`resource.type: "nova" is not ec2`}},
		{"endpoint not a URL", with(validResource(), "endpoint", "ec2.eu-west-1.amazonaws.com"),
			[]string{`resource.endpoint: "ec2.eu-west-1.amazonaws.com" is not an http(s) URL`}},
		{"security groups not a list", with(validResource(), "security_group_ids", map[string]any{"a": 1}),
			[]string{"resource.security_group_ids: is a mapping; want a list of security group ids"}},
		{"security group not a string", with(validResource(), "security_group_ids", []any{"sg-1", 7}),
			[]string{"resource.security_group_ids[1]: 7 is not a security group id"}},
		{"tags not a mapping", with(validResource(), "tags", []any{"a"}), []string{"resource.tags: is a list; want a mapping"}},
		{"reserved tags", with(validResource(), "tags", map[string]any{"aws:foo": "x", "skyfleet-node": "y"}),
			[]string{"resource.tags.aws:foo: tag names starting with aws: are reserved by AWS", "resource.tags.skyfleet-node: tag names skyfleet and skyfleet-* are reserved"}},
		{"tag value too long", with(validResource(), "tags", map[string]any{"k": strings.Repeat("v", 257)}),
			[]string{"resource.tags.k: the value is 257 characters long; EC2 allows at most 256"}},
		{"name not a string", with(validResource(), "name", []any{"a"}), []string{"resource.name: [a] is a list; want a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeResource(tt.in)
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
	// Lengths count characters, not bytes, so a name never ends in half a character.
	if got := DefaultName("ééééééééééééééééééééé", "i", "n", "t"); got != "skyfleet-"+strings.Repeat("é", 18)+"-i-n-t" {
		t.Errorf("DefaultName with multi-byte characters = %q", got)
	}
}
