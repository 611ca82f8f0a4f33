package descriptor

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestOccopusTutorialConstructs covers constructs found in the node definition files that
// Occopus' published tutorials ship (see docs/compatibility.md), each reproduced by a small
// fixture of our own: every one that Occopus accepts must load, with the warnings shown.
func TestOccopusTutorialConstructs(t *testing.T) {
	unsupported := func(file string, line int, node, typ string) string {
		return file + ":" + strconv.Itoa(line) + ":13: warning: node_def:" + node + "[0].resource.type: resource type \"" + typ +
			"\" is recognised but skyfleet does not support it yet (supported: ec2, nova, docker, local, sim)"
	}
	tests := []struct {
		file      string
		wantErrs  []string
		wantWarns []string
		wantType  string // the first implementation's resource type, when the file loads
	}{
		{
			file: "azure_legacy_type.yaml",
			wantWarns: []string{
				`testdata/occopus/azure_legacy_type.yaml:4:13: warning: node_def:vm[0].resource.type: resource type "azure" is the name older Occopus releases gave azure_vm; it is checked as azure_vm`,
				unsupported("testdata/occopus/azure_legacy_type.yaml", 4, "vm", "azure_vm"),
			},
			wantType: "azure",
		},
		{
			file: "azure_legacy_type_bad.yaml",
			wantErrs: []string{
				`testdata/occopus/azure_legacy_type_bad.yaml:4:7: node_def:vm[0].resource: missing required key "vm_size"`,
				`testdata/occopus/azure_legacy_type_bad.yaml:14:7: node_def:vm[0].resource.nic_name: unknown key "nic_name" (allowed: type, endpoint, resource_group, location, vm_size, publisher, offer, sku, version, username, public_ip_needed, vnet_name, subnet_name, customdata, server_name, password, ssh_key_data)`,
			},
		},
		{
			file:      "azure_aci_no_context.yaml",
			wantWarns: []string{unsupported("testdata/occopus/azure_aci_no_context.yaml", 4, "web", "azure_aci")},
			wantType:  "azure_aci",
		},
		{
			file: "azure_aci_cloudinit.yaml",
			wantErrs: []string{
				`testdata/occopus/azure_aci_cloudinit.yaml:14:7: node_def:web[0].contextualisation.type: resource type azure_aci needs contextualisation type docker, not "cloudinit"`,
			},
		},
		{file: "nova_empty_values.yaml", wantType: "nova"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			defs, warns, err := LoadNodeDefsFile(filepath.Join("testdata", "occopus", tc.file))
			var got []string
			if err != nil {
				var es Errors
				if !errors.As(err, &es) {
					t.Fatalf("got error %v (%T), want Errors", err, err)
				}
				got = strings.Split(es.Error(), "\n")
			}
			if !slices.Equal(got, tc.wantErrs) {
				t.Errorf("errors differ\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.wantErrs, "\n"))
			}
			if err != nil {
				return
			}
			if gw := warningStrings(warns); !slices.Equal(gw, tc.wantWarns) {
				t.Errorf("warnings differ\ngot:\n%s\nwant:\n%s", strings.Join(gw, "\n"), strings.Join(tc.wantWarns, "\n"))
			}
			for _, def := range defs {
				if got := def.Impls[0].ResourceType(); got != tc.wantType {
					t.Errorf("resource type = %q, want %q", got, tc.wantType)
				}
			}
		})
	}
}
