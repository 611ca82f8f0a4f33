package nova

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
		case "image_id":
			r.ImageID = str(k, v)
		case "flavor_name":
			r.FlavorName = str(k, v)
		case "project_id":
			r.ProjectID = str(k, v)
		case "server_name":
			r.ServerName = str(k, v)
			if len(r.ServerName) > 255 {
				bad(k, "is %d bytes long; Nova allows at most 255", len(r.ServerName))
			}
		case "key_name":
			r.KeyName = str(k, v)
		case "name":
			r.Name = str(k, v)
		case "tenant_name":
			r.TenantName = str(k, v)
			warnings = append(warnings, "resource.tenant_name is deprecated (as in Occopus) and ignored; the project is project_id")
		case "user_domain_name":
			r.UserDomainName = str(k, v)
		case "network_id":
			r.NetworkID = str(k, v)
		case "region_name":
			r.RegionName = str(k, v)
		case "floating_ip_pool":
			r.FloatingIPPool = str(k, v)
		case "floating_ip":
			r.FloatingIP = truthy(v)
		case "security_groups":
			switch x := v.(type) {
			case nil:
			case string:
				r.SecurityGroups = []string{x}
			case []any:
				for i, g := range x {
					s, ok := g.(string)
					if !ok || s == "" {
						bad(fmt.Sprintf("%s[%d]", k, i), "%v is not a security group name; want a string", g)
						continue
					}
					r.SecurityGroups = append(r.SecurityGroups, s)
				}
			default:
				bad(k, "is a %s; want a list of security group names", typeName(v))
			}
		case "volume_size":
			n, ok := integer(v)
			if !ok || n < 0 {
				bad(k, "%v is not allowed; want a whole number of GB, 0 (boot from the image) or more", v)
				continue
			}
			r.VolumeSize = n
		case "volume_persist":
			b, ok := boolean(v)
			if !ok {
				bad(k, "%v is not allowed; want true or false", v)
				continue
			}
			r.VolumePersist = b
		default:
			bad(k, "unknown key (allowed: %s)", strings.Join(resourceKeys, ", "))
		}
	}
	required := map[string]string{"type": r.Type, "endpoint": r.Endpoint, "image_id": r.ImageID, "flavor_name": r.FlavorName, "project_id": r.ProjectID}
	for _, k := range []string{"type", "endpoint", "image_id", "flavor_name", "project_id"} {
		if _, present := m[k]; !present {
			bad(k, "missing (a nova resource needs type, endpoint, image_id, flavor_name and project_id)")
		} else if required[k] == "" && !namesKey(errs, k) {
			bad(k, "must not be empty")
		}
	}
	if r.Type != "" && r.Type != "nova" {
		bad("type", "%q is not nova", r.Type)
	}
	if r.Endpoint != "" {
		u, perr := url.Parse(r.Endpoint)
		switch {
		case perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			bad("endpoint", "%q is not an http(s) URL; want the Keystone endpoint, e.g. https://keystone.example:5000/v3", r.Endpoint)
		case versionSuffix.MatchString(u.Path) && !strings.HasPrefix(versionSuffix.FindString(u.Path), "/v3"):
			bad("endpoint", "%q is not a Keystone v3 endpoint; skyfleet (as Occopus) authenticates with Keystone v3: end it with /v3 or leave the version out", r.Endpoint)
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
	if len(errs) > 0 {
		return Resource{}, nil, fmt.Errorf("nova resource: %w", errors.Join(errs...))
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

func boolean(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(x)
		return b, err == nil
	}
	return false, false
}

func integer(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case uint64:
		return int(x), true
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return int(x), true
		}
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
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

// DefaultName is the name of a server whose resource has no server_name: Occopus' unique VM
// name with skyfleet's prefix,
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
