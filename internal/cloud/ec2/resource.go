package ec2

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// Resource is the decoded `resource` section of an ec2 node definition, with Occopus' keys.
type Resource struct {
	// Type is always "ec2".
	Type string
	// Endpoint is the EC2 API endpoint, e.g. https://ec2.eu-west-1.amazonaws.com.
	Endpoint string
	// RegionName is the region requests are signed for, e.g. eu-west-1.
	RegionName string
	// ImageID is the AMI, e.g. ami-0abcdef1234567890.
	ImageID string
	// InstanceType is e.g. t3.small.
	InstanceType string
	// KeyName is the SSH key pair; empty for none.
	KeyName string
	// SecurityGroupIDs are the security groups (sg-…); empty for the default group.
	SecurityGroupIDs []string
	// SubnetID places the instance in a VPC subnet; empty for the default.
	SubnetID string
	// Name is the instance's Name tag; empty means DefaultName.
	Name string
	// Tags are user tags added to the instance (skyfleet's own tags always win).
	Tags map[string]string
}

// resourceKeys lists the keys an ec2 resource section may have, for error messages.
var resourceKeys = []string{"endpoint", "image_id", "instance_type", "key_name", "name", "regionname", "security_group_ids", "subnet_id", "tags", "type"}

// maxUserTags leaves room within EC2's 50 tags per resource for skyfleet's five and Name.
const maxUserTags = 44

// DecodeResource decodes and checks a rendered resource section strictly: unknown keys,
// missing required keys and bad values are all reported at once, each naming the key, the
// bad value and what is allowed.
func DecodeResource(m map[string]any) (Resource, error) {
	var r Resource
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("resource.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	str := func(key string, v any) string {
		switch s := v.(type) {
		case string:
			return s
		case int, int64, uint64:
			return fmt.Sprint(s)
		}
		bad(key, "%v is a %s; want a string", v, typeName(v))
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch k {
		case "type":
			r.Type = str(k, v)
		case "endpoint":
			r.Endpoint = str(k, v)
		case "regionname":
			r.RegionName = str(k, v)
		case "image_id":
			r.ImageID = str(k, v)
		case "instance_type":
			r.InstanceType = str(k, v)
		case "key_name":
			r.KeyName = str(k, v)
		case "subnet_id":
			r.SubnetID = str(k, v)
		case "name":
			r.Name = str(k, v)
			if utf8.RuneCountInString(r.Name) > 256 {
				bad(k, "is %d characters long; EC2 tag values (Name) allow at most 256", utf8.RuneCountInString(r.Name))
			}
		case "security_group_ids":
			switch x := v.(type) {
			case nil:
			case string:
				r.SecurityGroupIDs = []string{x}
			case []any:
				for i, g := range x {
					s, ok := g.(string)
					if !ok || s == "" {
						bad(fmt.Sprintf("%s[%d]", k, i), "%v is not a security group id; want a string such as sg-0123456789abcdef0", g)
						continue
					}
					r.SecurityGroupIDs = append(r.SecurityGroupIDs, s)
				}
			default:
				bad(k, "is a %s; want a list of security group ids ([sg-…])", typeName(v))
			}
		case "tags":
			r.Tags = decodeTags(v, bad)
		default:
			bad(k, "unknown key (allowed: %s)", strings.Join(resourceKeys, ", "))
		}
	}
	required := map[string]string{"type": r.Type, "endpoint": r.Endpoint, "regionname": r.RegionName, "image_id": r.ImageID, "instance_type": r.InstanceType}
	for _, k := range []string{"type", "endpoint", "regionname", "image_id", "instance_type"} {
		if _, present := m[k]; !present {
			bad(k, "missing (an ec2 resource needs type, endpoint, regionname, image_id and instance_type)")
		} else if required[k] == "" && !namesKey(errs, k) {
			bad(k, "must not be empty")
		}
	}
	if r.Type != "" && r.Type != "ec2" {
		bad("type", "%q is not ec2", r.Type)
	}
	if r.Endpoint != "" {
		u, err := url.Parse(r.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("endpoint", "%q is not an http(s) URL; want e.g. https://ec2.eu-west-1.amazonaws.com", r.Endpoint)
		}
	}
	if strings.ContainsAny(r.RegionName, " /\t") {
		bad("regionname", "%q is not a region name; want e.g. eu-west-1", r.RegionName)
	}
	if len(errs) > 0 {
		return Resource{}, fmt.Errorf("ec2 resource: %w", errors.Join(errs...))
	}
	return r, nil
}

// decodeTags checks user tags against EC2's rules and skyfleet's reserved keys.
func decodeTags(v any, bad func(key, format string, args ...any)) map[string]string {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		bad("tags", "is a %s; want a mapping of tag names to values", typeName(v))
		return nil
	}
	out := make(map[string]string, len(m))
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		key := "tags." + k
		switch {
		case k == "" || utf8.RuneCountInString(k) > 128:
			bad(key, "a tag name must have 1 to 128 characters")
			continue
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			bad(key, "tag names starting with aws: are reserved by AWS")
			continue
		case k == "skyfleet" || strings.HasPrefix(k, "skyfleet-"):
			bad(key, "tag names skyfleet and skyfleet-* are reserved for skyfleet's own tags")
			continue
		}
		var val string
		switch x := m[k].(type) {
		case nil:
		case string:
			val = x
		case int, int64, uint64, float64, bool:
			val = fmt.Sprint(x)
		default:
			bad(key, "is a %s; want a string", typeName(x))
			continue
		}
		if utf8.RuneCountInString(val) > 256 {
			bad(key, "the value is %d characters long; EC2 allows at most 256", utf8.RuneCountInString(val))
			continue
		}
		out[k] = val
	}
	if len(m) > maxUserTags {
		bad("tags", "%d tags; at most %d (EC2 allows 50 per instance and skyfleet uses 6)", len(m), maxUserTags)
	}
	return out
}

func namesKey(errs []error, key string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e.Error(), "resource."+key+":") {
			return true
		}
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	case bool:
		return "boolean"
	case float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// DefaultName is the Name tag of an instance whose resource has no `name`: Occopus'
// unique VM name with skyfleet's prefix,
// skyfleet-{infra_name[:18]}-{infra_id[:8]}-{node[:18]}-{node_id[:8]} (lengths in characters).
func DefaultName(infraName, infraID, node, nodeID string) string {
	return fmt.Sprintf("skyfleet-%s-%s-%s-%s", cut(infraName, 18), cut(infraID, 8), cut(node, 18), cut(nodeID, 8))
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}
