package descriptor

import (
	"fmt"
	"math"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// resourceSchema is the key list of one resource type, as Occopus' resource plugins check
// it, plus skyfleet's value checks for its own types.
type resourceSchema struct {
	required, optional []string
	// supported is false for types that are recognised (their files validate) but that
	// skyfleet has no provider for yet.
	supported bool
	// check runs extra checks on the section's values.
	check func(c *checker, f map[string]*node, path string, sec *node)
}

// legacyAzureType is the resource type older Occopus releases gave their Azure virtual
// machine plugin, now azure_vm.
const legacyAzureType = "azure"

// resourceTypes lists the known resource types in the order messages show them.
var resourceTypes = []string{"ec2", "nova", "docker", "azure_vm", "azure_aci", "cloudbroker", "cloudsigma", "local", "sim"}

func resourceSchemaFor(t string) (resourceSchema, bool) {
	switch t {
	case "ec2":
		return resourceSchema{
			required:  []string{"type", "endpoint", "regionname", "image_id", "instance_type"},
			optional:  []string{"key_name", "security_group_ids", "subnet_id", "name", "tags"},
			supported: true,
		}, true
	case "nova":
		return resourceSchema{
			required: []string{"type", "endpoint", "image_id", "flavor_name", "project_id"},
			optional: []string{"server_name", "key_name", "security_groups", "floating_ip", "floating_ip_pool",
				"name", "tenant_name", "user_domain_name", "network_id", "region_name", "volume_size", "volume_persist"},
			supported: true,
		}, true
	case "docker":
		return resourceSchema{
			required:  []string{"type", "endpoint", "origin", "image", "tag"},
			optional:  []string{"name"},
			supported: true,
		}, true
	case "azure_vm":
		return resourceSchema{
			required: []string{"type", "endpoint", "resource_group", "location", "vm_size", "publisher", "offer", "sku", "version", "username"},
			optional: []string{"public_ip_needed", "vnet_name", "subnet_name", "customdata", "server_name", "password", "ssh_key_data"},
			check: func(c *checker, f map[string]*node, path string, sec *node) {
				if f["password"] == nil && f["ssh_key_data"] == nil {
					c.d.errorf(sec.pos, path, "", "azure_vm needs one of the keys password or ssh_key_data")
				}
			},
		}, true
	case "azure_aci":
		return resourceSchema{
			required: []string{"type", "endpoint", "resource_group", "location", "cpu_cores", "memory", "image", "os_type", "network_type"},
			optional: []string{"gpu_type", "gpu_count", "ports", "vnet_name", "subnet_name"},
		}, true
	case "cloudbroker":
		return resourceSchema{
			required: []string{"type", "endpoint", "description"},
			optional: []string{"name", "start_in_vpc"},
		}, true
	case "cloudsigma":
		return resourceSchema{
			required: []string{"type", "endpoint", "libdrive_id", "description"},
			optional: []string{"name"},
		}, true
	case "local":
		return resourceSchema{
			required:  []string{"type"},
			optional:  []string{"name", "cpus", "memory", "address_range"},
			supported: true,
			check: func(c *checker, f map[string]*node, path string, _ *node) {
				if n := f["name"]; n != nil {
					c.str(n, joinKey(path, "name"))
				}
				if n := f["cpus"]; n != nil {
					if v, ok := c.number(n, joinKey(path, "cpus")); ok && v <= 0 {
						c.d.errorf(n.pos, joinKey(path, "cpus"), n.value, "%s is out of range; want a number of CPUs > 0 (e.g. 0.5)", n.value)
					}
				}
				if n := f["memory"]; n != nil {
					c.size(n, joinKey(path, "memory"))
				}
				if n := f["address_range"]; n != nil {
					c.loopbackPrefix(n, joinKey(path, "address_range"))
				}
			},
		}, true
	case "sim":
		return resourceSchema{
			required:  []string{"type"},
			optional:  []string{"name", "boot_time", "failure_rate", "api_error_rate", "lose_response_rate", "latency", "address_range"},
			supported: true,
			check: func(c *checker, f map[string]*node, path string, _ *node) {
				for _, k := range []string{"boot_time", "latency"} {
					if n := f[k]; n != nil {
						c.duration(n, joinKey(path, k))
					}
				}
				for _, k := range []string{"failure_rate", "api_error_rate", "lose_response_rate"} {
					if n := f[k]; n != nil {
						c.fraction(n, joinKey(path, k))
					}
				}
				if n := f["name"]; n != nil {
					c.str(n, joinKey(path, "name"))
				}
				if n := f["address_range"]; n != nil {
					// Simulated addresses are labels that no traffic is sent to, so any IPv4
					// range will do (the provider's default is 10.77.0.0/16).
					c.ipv4Prefix(n, joinKey(path, "address_range"))
				}
			},
		}, true
	}
	return resourceSchema{}, false
}

// ResourceKeys returns the required and optional keys of a resource section of the given
// type (both include what Occopus' plugin checks, "type" among the required ones). ok is false
// for an unknown type. The returned slices are the caller's to keep.
//
// skyfleet's own types are:
//
//	local: type (required); name (string), cpus (number of CPUs > 0, a cap), memory (a size
//	       such as "512M" or "256Mi", or a number of bytes; see ParseSize), address_range (a
//	       prefix within 127.0.0.0/8 from which instance addresses are taken, e.g.
//	       "127.42.0.0/16").
//	sim:   type (required); name (string), boot_time and latency (durations),
//	       failure_rate, api_error_rate and lose_response_rate (numbers from 0 to 1),
//	       address_range (any IPv4 prefix: simulated addresses receive no traffic).
func ResourceKeys(resourceType string) (required, optional []string, ok bool) {
	s, ok := resourceSchemaFor(resourceType)
	if !ok {
		return nil, nil, false
	}
	return slices.Clone(s.required), slices.Clone(s.optional), true
}

// ResourceTypes returns every resource type the parser knows, supported by skyfleet or not.
func ResourceTypes() []string { return slices.Clone(resourceTypes) }

// SupportedResourceType tells whether skyfleet can create instances of a resource type.
// azure_vm, azure_aci, cloudbroker and cloudsigma are recognised (their node definitions
// validate, with a warning) but have no skyfleet provider yet.
func SupportedResourceType(t string) bool {
	s, ok := resourceSchemaFor(t)
	return ok && s.supported
}

// checkResource checks a resource section against its type's key list.
func (c *checker) checkResource(sec *node, path string, w *diag) {
	if !c.mapping(sec, path) {
		return
	}
	tn := sec.get("type")
	if tn == nil {
		c.d.errorf(sec.pos, path, "", "missing required key \"type\" (one of: %s)", strings.Join(resourceTypes, ", "))
		return
	}
	var t string
	if tn.kind == yaml.ScalarNode && tn.value == legacyAzureType {
		// Occopus releases before azure_vm and azure_aci existed registered their Azure
		// virtual machine plugin as "azure", and published tutorials (azure-ping) still use
		// that name; its keys are azure_vm's.
		t = "azure_vm"
		w.warnf(tn.pos, joinKey(path, "type"), "resource type %q is the name older Occopus releases gave azure_vm; it is checked as azure_vm", legacyAzureType)
	} else {
		var ok bool
		if t, ok = c.oneOf(tn, joinKey(path, "type"), resourceTypes); !ok {
			return
		}
	}
	s, _ := resourceSchemaFor(t)
	f, ok := c.fields(sec, path, s.required, s.optional)
	if !ok {
		return
	}
	if s.check != nil {
		s.check(c, f, path, sec)
	}
	if !s.supported {
		w.warnf(tn.pos, joinKey(path, "type"), "resource type %q is recognised but skyfleet does not support it yet (supported: %s)",
			t, strings.Join(supportedTypes(), ", "))
	}
}

func supportedTypes() []string {
	var out []string
	for _, t := range resourceTypes {
		if SupportedResourceType(t) {
			out = append(out, t)
		}
	}
	return out
}

// contextTypes are the contextualisation types: Occopus' cloudinit, docker and basic, and
// skyfleet's process (for the local provider).
var contextTypes = []string{"cloudinit", "docker", "basic", "process"}

// checkContext checks a contextualisation section.
func (c *checker) checkContext(sec *node, path string) {
	if !c.mapping(sec, path) {
		return
	}
	tn := sec.get("type")
	if tn == nil {
		c.d.errorf(sec.pos, path, "", "missing required key \"type\" (one of: %s)", strings.Join(contextTypes, ", "))
		return
	}
	t, ok := c.oneOf(tn, joinKey(path, "type"), contextTypes)
	if !ok {
		return
	}
	switch t {
	case "cloudinit":
		f, ok := c.fields(sec, path, []string{"type", "context_template"}, []string{"attributes"})
		if !ok {
			return
		}
		if n := f["context_template"]; !n.broken() {
			if n.kind == yaml.SequenceNode || (n.kind == yaml.ScalarNode && n.tag != "!!str") {
				c.wrongType(n, joinKey(path, "context_template"), "a string or a mapping (e.g. !yaml_import {url: file://cloud_init.yaml})")
			}
		}
	case "docker":
		f, ok := c.fields(sec, path, []string{"type", "env"}, []string{"context_variables", "command"})
		if !ok {
			return
		}
		if n := f["env"]; n != nil {
			c.stringList(n, joinKey(path, "env"))
		}
		if n := f["context_variables"]; !n.broken() && n.kind != yaml.MappingNode && (n.kind != yaml.ScalarNode || n.tag != "!!str") {
			c.wrongType(n, joinKey(path, "context_variables"), "a mapping or a string")
		}
		if n := f["command"]; !n.broken() {
			if n.kind == yaml.SequenceNode {
				c.stringList(n, joinKey(path, "command"))
			} else {
				c.str(n, joinKey(path, "command"))
			}
		}
	case "basic":
		c.fields(sec, path, []string{"type", "attributes"}, nil)
	case "process":
		f, ok := c.fields(sec, path, []string{"type", "command"}, []string{"env", "files", "workdir"})
		if !ok {
			return
		}
		if n := f["command"]; n != nil {
			p := joinKey(path, "command")
			if c.list(n, p, "a list of strings (the program and its arguments)", func(item *node, ip string) { c.str(item, ip) }) && len(n.content) == 0 {
				c.d.errorf(n.pos, p, "", "must not be empty: give the program and its arguments")
			}
		}
		if n := f["env"]; n != nil {
			c.envMap(n, joinKey(path, "env"))
		}
		if n := f["files"]; n != nil {
			c.processFiles(n, joinKey(path, "files"))
		}
		if n := f["workdir"]; n != nil {
			if s, ok := c.str(n, joinKey(path, "workdir")); ok && !isRelativeInside(s) {
				c.d.errorf(n.pos, joinKey(path, "workdir"), s, "%q must be a relative path inside the instance's working directory", s)
			}
		}
	}
}

// processFiles checks files: a mapping of relative file names to their contents.
func (c *checker) processFiles(n *node, p string) {
	if !c.mapping(n, p) {
		return
	}
	for i := 0; i+1 < len(n.content); i += 2 {
		k := n.content[i]
		kp := joinKey(p, k.value)
		if !isRelativeInside(k.value) || path.Clean(k.value) == "." {
			c.d.errorf(k.pos, kp, k.value, "file name %q must be a relative path inside the working directory", k.value)
			continue
		}
		c.str(n.content[i+1], kp)
	}
}

// isRelativeInside tells whether p is a relative path that stays inside its base directory.
func isRelativeInside(p string) bool {
	clean := path.Clean(p)
	return p != "" && !path.IsAbs(p) && clean != ".." && !strings.HasPrefix(clean, "../")
}

// envMap checks a mapping of environment variable names to scalar values (strings, numbers
// or booleans, written as in YAML).
func (c *checker) envMap(n *node, p string) {
	if !c.mapping(n, p) {
		return
	}
	for i := 0; i+1 < len(n.content); i += 2 {
		k, v := n.content[i], n.content[i+1]
		kp := joinKey(p, k.value)
		if k.value == "" || strings.ContainsAny(k.value, "=\x00") {
			c.d.errorf(k.pos, kp, k.value, "%q is not a valid environment variable name", k.value)
		}
		if !v.broken() && (v.kind != yaml.ScalarNode || v.isNull()) {
			c.wrongType(v, kp, "a string, number or boolean")
		}
	}
}

// healthKeys are the keys of a health_check section: Occopus' basic checker's, plus
// skyfleet's interval.
var healthKeys = []string{"type", "ping", "ports", "urls", "mysqldbs", "timeout", "interval"}

// checkHealth checks a health_check section.
func (c *checker) checkHealth(sec *node, path string) {
	f, ok := c.fields(sec, path, nil, healthKeys)
	if !ok {
		return
	}
	if n := f["type"]; n != nil {
		c.oneOf(n, joinKey(path, "type"), []string{"basic"})
	}
	if n := f["ping"]; n != nil {
		c.boolean(n, joinKey(path, "ping"))
	}
	if n := f["ports"]; n != nil {
		c.list(n, joinKey(path, "ports"), "a list of port numbers (1..65535)", func(item *node, ip string) {
			c.intRange(item, ip, 1, 65535)
		})
	}
	if n := f["urls"]; n != nil {
		c.list(n, joinKey(path, "urls"), "a list of URLs", func(item *node, ip string) { c.nonEmptyStr(item, ip) })
	}
	if n := f["mysqldbs"]; n != nil {
		c.list(n, joinKey(path, "mysqldbs"), "a list of {name, user, pass} mappings", func(item *node, ip string) {
			db, ok := c.fields(item, ip, []string{"name", "user", "pass"}, nil)
			if !ok {
				return
			}
			for _, k := range []string{"name", "user", "pass"} {
				if v := db[k]; v != nil {
					c.scalarString(v, joinKey(ip, k))
				}
			}
		})
	}
	if n := f["timeout"]; n != nil {
		c.intRange(n, joinKey(path, "timeout"), 1, 1<<31-1)
	}
	if n := f["interval"]; n != nil {
		if d, ok := c.duration(n, joinKey(path, "interval")); ok && d == 0 {
			c.d.errorf(n.pos, joinKey(path, "interval"), n.value, "must be longer than 0")
		}
	}
}

// configManagers are the config_management types (Occopus').
var configManagers = []string{"dummy", "chef", "puppet_solo"}

// checkConfigManagement checks a config_management section.
func (c *checker) checkConfigManagement(sec *node, path string, w *diag) {
	if !c.mapping(sec, path) {
		return
	}
	tn := sec.get("type")
	if tn == nil {
		c.d.errorf(sec.pos, path, "", "missing required key \"type\" (one of: %s)", strings.Join(configManagers, ", "))
		return
	}
	t, ok := c.oneOf(tn, joinKey(path, "type"), configManagers)
	if !ok {
		return
	}
	switch t {
	case "dummy":
		c.fields(sec, path, []string{"type"}, nil)
	case "chef":
		f, ok := c.fields(sec, path, []string{"type", "endpoint", "run_list"}, nil)
		if ok && f["run_list"] != nil {
			c.stringList(f["run_list"], joinKey(path, "run_list"))
		}
	case "puppet_solo":
		c.fields(sec, path, []string{"type", "manifests"}, []string{"modules", "attributes"})
	}
	if t != "dummy" {
		w.warnf(tn.pos, joinKey(path, "type"), "config manager %q is recognised but skyfleet does not run it yet; only dummy is supported", t)
	}
}

var sizeRE = regexp.MustCompile(`^([0-9]+)(|[KMGT]i?)$`)

// ParseSize reads a memory size as plain data gives it: an integer number of bytes, or a
// string such as "512M" or "256Mi" (K, M, G and T are powers of 1000; Ki, Mi, Gi and Ti
// powers of 1024).
func ParseSize(v any) (int64, error) {
	switch v := v.(type) {
	case int:
		if v <= 0 {
			return 0, fmt.Errorf("%d is out of range; want a size > 0", v)
		}
		return int64(v), nil
	case string:
		m := sizeRE.FindStringSubmatch(strings.TrimSpace(v))
		if m == nil {
			return 0, fmt.Errorf("%q is not a size; want e.g. \"512M\", \"256Mi\" or a number of bytes", v)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		unit := map[string]int64{"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
			"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}[m[2]]
		if err != nil || n <= 0 || n > math.MaxInt64/unit {
			return 0, fmt.Errorf("%q is out of range; want a size > 0", v)
		}
		return n * unit, nil
	}
	return 0, fmt.Errorf("%s is not a size; want e.g. \"512M\", \"256Mi\" or a number of bytes", formatValue(v))
}

func (c *checker) size(n *node, p string) {
	if n.broken() {
		return
	}
	var v any = n.value
	if n.kind != yaml.ScalarNode || (n.tag != "!!str" && n.tag != "!!int") {
		c.wrongType(n, p, `a size such as "512M" or a number of bytes`)
		return
	}
	if n.tag == "!!int" {
		i, _ := parseInt(n.value)
		v = i
	}
	if _, err := ParseSize(v); err != nil {
		c.d.errorf(n.pos, p, n.value, "%v", err)
	}
}

// ipv4Prefix checks an IPv4 address range.
func (c *checker) ipv4Prefix(n *node, p string) {
	s, ok := c.str(n, p)
	if !ok {
		return
	}
	if pfx, err := netip.ParsePrefix(s); err != nil || !pfx.Addr().Is4() {
		c.d.errorf(n.pos, p, s, "%q is not an IPv4 address prefix; want e.g. \"10.77.0.0/16\"", s)
	}
}

// loopbackPrefix checks an address range within 127.0.0.0/8.
func (c *checker) loopbackPrefix(n *node, p string) {
	s, ok := c.str(n, p)
	if !ok {
		return
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		c.d.errorf(n.pos, p, s, "%q is not an address prefix; want e.g. \"127.42.0.0/16\"", s)
		return
	}
	if !pfx.Addr().Is4() || pfx.Bits() < 8 || !netip.MustParsePrefix("127.0.0.0/8").Contains(pfx.Addr()) {
		c.d.errorf(n.pos, p, s, "%q is outside 127.0.0.0/8; instances may only use loopback addresses", s)
	}
}
