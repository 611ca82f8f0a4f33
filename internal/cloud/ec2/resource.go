package ec2

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/skyfleet/skyfleet/internal/cloud/decode"
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
	p := decode.NewProblems("resource")
	text := map[string]*string{
		"type": &r.Type, "endpoint": &r.Endpoint, "regionname": &r.RegionName, "image_id": &r.ImageID,
		"instance_type": &r.InstanceType, "key_name": &r.KeyName, "subnet_id": &r.SubnetID,
	}
	for k, v := range p.Walk(m, text) {
		switch k {
		case "name":
			r.Name = p.Text(k, v)
			if utf8.RuneCountInString(r.Name) > 256 {
				p.Bad(k, "is %d characters long; EC2 tag values (Name) allow at most 256", utf8.RuneCountInString(r.Name))
			}
		case "security_group_ids":
			r.SecurityGroupIDs = p.StringList(k, v, "a security group id; want a string such as sg-0123456789abcdef0",
				"a list of security group ids ([sg-…])")
		case "tags":
			r.Tags = decodeTags(v, p)
		default:
			p.Unknown(k, resourceKeys)
		}
	}
	p.Require(m, "an ec2 resource", "type", "endpoint", "regionname", "image_id", "instance_type")
	p.WantType(r.Type, "ec2")
	if r.Endpoint != "" {
		u, err := url.Parse(r.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.Bad("endpoint", "%q is not an http(s) URL; want e.g. https://ec2.eu-west-1.amazonaws.com", r.Endpoint)
		}
	}
	if strings.ContainsAny(r.RegionName, " /\t") {
		p.Bad("regionname", "%q is not a region name; want e.g. eu-west-1", r.RegionName)
	}
	if err := p.Err(); err != nil {
		return Resource{}, fmt.Errorf("ec2 resource: %w", err)
	}
	return r, nil
}

// decodeTags checks user tags against EC2's rules and skyfleet's reserved keys.
func decodeTags(v any, p *decode.Problems) map[string]string {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.Bad("tags", "is a %s; want a mapping of tag names to values", decode.TypeName(v))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, raw := range p.Walk(m, nil) {
		key := "tags." + k
		switch {
		case k == "" || utf8.RuneCountInString(k) > 128:
			p.Bad(key, "a tag name must have 1 to 128 characters")
			continue
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			p.Bad(key, "tag names starting with aws: are reserved by AWS")
			continue
		case k == "skyfleet" || strings.HasPrefix(k, "skyfleet-"):
			p.Bad(key, "tag names skyfleet and skyfleet-* are reserved for skyfleet's own tags")
			continue
		}
		var val string
		switch x := raw.(type) {
		case nil:
		case string:
			val = x
		case int, int64, uint64, float64, bool:
			val = fmt.Sprint(x)
		default:
			p.Bad(key, "is a %s; want a string", decode.TypeName(x))
			continue
		}
		if utf8.RuneCountInString(val) > 256 {
			p.Bad(key, "the value is %d characters long; EC2 allows at most 256", utf8.RuneCountInString(val))
			continue
		}
		out[k] = val
	}
	if len(m) > maxUserTags {
		p.Bad("tags", "%d tags; at most %d (EC2 allows 50 per instance and skyfleet uses 6)", len(m), maxUserTags)
	}
	return out
}

// DefaultName is the Name tag of an instance whose resource has no `name`: Occopus'
// unique VM name with skyfleet's prefix (see decode.VMName).
func DefaultName(infraName, infraID, node, nodeID string) string {
	return decode.VMName(infraName, infraID, node, nodeID)
}
