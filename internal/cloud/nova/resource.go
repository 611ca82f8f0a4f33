package nova

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/skyfleet/skyfleet/internal/cloud/decode"
)

// Resource is the decoded `resource` section of a nova node definition, with Occopus' keys.
type Resource struct {
	// Type is always "nova".
	Type string
	// Endpoint is the Keystone endpoint as given; IdentityEndpoint is it with /v3 appended
	// when it has no /vN suffix (as Occopus does).
	Endpoint         string
	IdentityEndpoint string
	// ImageID is the Glance image the server boots from (or the boot volume is made of).
	ImageID string
	// FlavorName is resolved to a flavor id through the Nova API.
	FlavorName string
	// ProjectID scopes password authentication.
	ProjectID string
	// ServerName is the server's name; empty means DefaultName.
	ServerName string
	// KeyName is the SSH key pair; empty for none.
	KeyName string
	// SecurityGroups are security group names; empty for the project's default.
	SecurityGroups []string
	// FloatingIP asks for a floating IP to be allocated and associated.
	FloatingIP bool
	// FloatingIPPool is the external network (name or id) to allocate from; empty means the
	// first external network.
	FloatingIPPool string
	// Name is a label of the resource (Occopus' resource handler name); it does not name
	// the server.
	Name string
	// TenantName is accepted for old node definitions and ignored (deprecated in Occopus).
	TenantName string
	// UserDomainName is the domain of a password user; default "Default".
	UserDomainName string
	// NetworkID attaches the server to that network; empty lets Nova choose.
	NetworkID string
	// RegionName selects the catalog endpoints; empty takes the first.
	RegionName string
	// VolumeSize > 0 boots from a new volume of that many GB made from the image.
	VolumeSize int
	// VolumePersist keeps that volume when the server is deleted.
	VolumePersist bool
}

var resourceKeys = []string{"endpoint", "flavor_name", "floating_ip", "floating_ip_pool", "image_id", "key_name", "name",
	"network_id", "project_id", "region_name", "security_groups", "server_name", "tenant_name", "type",
	"user_domain_name", "volume_persist", "volume_size"}

// versionSuffix matches a Keystone version at the end of an endpoint (/v3, /v2.0).
var versionSuffix = regexp.MustCompile(`/v\d+(\.\d+)?/?$`)

// IdentityEndpoint returns Occopus' normalisation of a Keystone endpoint: /v3 is appended
// when the path has no /vN suffix.
func IdentityEndpoint(endpoint string) string {
	if versionSuffix.MatchString(endpoint) {
		return strings.TrimSuffix(endpoint, "/")
	}
	return strings.TrimSuffix(endpoint, "/") + "/v3"
}

// DecodeResource decodes and checks a rendered resource section strictly: unknown keys,
// missing required keys and bad values are all reported at once, each naming the key, the
// bad value and what is allowed. warnings lists accepted but deprecated keys.
func DecodeResource(m map[string]any) (r Resource, warnings []string, err error) {
	p := decode.NewProblems("resource")
	text := map[string]*string{
		"type": &r.Type, "endpoint": &r.Endpoint, "image_id": &r.ImageID, "flavor_name": &r.FlavorName,
		"project_id": &r.ProjectID, "key_name": &r.KeyName, "name": &r.Name, "user_domain_name": &r.UserDomainName,
		"network_id": &r.NetworkID, "region_name": &r.RegionName, "floating_ip_pool": &r.FloatingIPPool,
	}
	for k, v := range p.Walk(m, text) {
		switch k {
		case "server_name":
			r.ServerName = p.Text(k, v)
			if len(r.ServerName) > 255 {
				p.Bad(k, "is %d bytes long; Nova allows at most 255", len(r.ServerName))
			}
		case "tenant_name":
			r.TenantName = p.Text(k, v)
			warnings = append(warnings, "resource.tenant_name is deprecated (as in Occopus) and ignored; the project is project_id")
		case "floating_ip":
			r.FloatingIP = truthy(v)
		case "security_groups":
			r.SecurityGroups = p.StringList(k, v, "a security group name; want a string", "a list of security group names")
		case "volume_size":
			n, ok := decode.Integer(v)
			if !ok || n < 0 {
				p.Bad(k, "%v is not allowed; want a whole number of GB, 0 (boot from the image) or more", v)
				continue
			}
			r.VolumeSize = n
		case "volume_persist":
			b, ok := decode.Bool(v)
			if !ok {
				p.Bad(k, "%v is not allowed; want true or false", v)
				continue
			}
			r.VolumePersist = b
		default:
			p.Unknown(k, resourceKeys)
		}
	}
	p.Require(m, "a nova resource", "type", "endpoint", "image_id", "flavor_name", "project_id")
	p.WantType(r.Type, "nova")
	if r.Endpoint != "" {
		u, perr := url.Parse(r.Endpoint)
		switch {
		case perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			p.Bad("endpoint", "%q is not an http(s) URL; want the Keystone endpoint, e.g. https://keystone.example:5000/v3", r.Endpoint)
		case versionSuffix.MatchString(u.Path) && !strings.HasPrefix(versionSuffix.FindString(u.Path), "/v3"):
			p.Bad("endpoint", "%q is not a Keystone v3 endpoint; skyfleet (as Occopus) authenticates with Keystone v3: end it with /v3 or leave the version out", r.Endpoint)
		default:
			r.IdentityEndpoint = IdentityEndpoint(r.Endpoint)
		}
	}
	if r.UserDomainName == "" {
		r.UserDomainName = "Default"
	}
	if r.VolumePersist && r.VolumeSize == 0 {
		warnings = append(warnings, "resource.volume_persist has no effect without volume_size > 0")
	}
	if problems := p.Err(); problems != nil {
		return Resource{}, nil, fmt.Errorf("nova resource: %w", problems)
	}
	return r, warnings, nil
}

// truthy is Occopus' reading of floating_ip ("any value → allocate"), except values that
// plainly say no: false, no, 0, the empty string and null.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "", "false", "no", "0", "off":
			return false
		}
		return true
	case int:
		return x != 0
	case float64:
		return x != 0
	}
	return true
}

// DefaultName is the name of a server whose resource has no server_name: Occopus' unique VM
// name with skyfleet's prefix (see decode.VMName).
func DefaultName(infraName, infraID, node, nodeID string) string {
	return decode.VMName(infraName, infraID, node, nodeID)
}
