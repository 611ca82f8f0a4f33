package descriptor

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// badFixtures maps each file under testdata/bad to the exact errors it must produce, in
// order. Paths in the messages are as the test passes them to the loaders.
var badFixtures = []struct {
	file string
	want []string
}{
	{"infra/alias_self.yaml", []string{
		"testdata/bad/infra/alias_self.yaml:6:24: alias *n refers to a node that contains it",
	}},
	{"infra/bad_names.yaml", []string{
		"testdata/bad/infra/bad_names.yaml:2:13: infra_name: \"my.infra\" is not a valid name: use 1 to 63 letters, digits or '-' (no '_' or '.')",
		"testdata/bad/infra/bad_names.yaml:5:11: nodes[0].name: \"my_app\" is not a valid name: use 1 to 63 letters, digits or '-' (no '_' or '.')",
		"testdata/bad/infra/bad_names.yaml:8:11: nodes[1].name: \"app.example.org\" is not a valid name: use 1 to 63 letters, digits or '-' (no '_' or '.')",
		"testdata/bad/infra/bad_names.yaml:11:11: nodes[2].name: \"a123456789012345678901234567890123456789012345678901234567890123\" is not a valid name: use 1 to 63 letters, digits or '-' (no '_' or '.')",
		"testdata/bad/infra/bad_names.yaml:14:11: nodes[3].name: \"\" is not a valid name: use 1 to 63 letters, digits or '-' (no '_' or '.')",
		"testdata/bad/infra/bad_names.yaml:18:12: dependencies[0][1]: unknown node \"app.example.org\" (nodes: none)",
	}},
	{"infra/billion_laughs.yaml", []string{
		"testdata/bad/infra/billion_laughs.yaml:9:10: alias expansion limit exceeded: aliases expand to more than 100000 nodes",
	}},
	{"infra/deep_nesting.yaml", []string{
		"testdata/bad/infra/deep_nesting.yaml:7:108: nesting depth limit exceeded: more than 100 levels of mappings and lists",
	}},
	{"infra/dep_cycle.yaml", []string{
		"testdata/bad/infra/dep_cycle.yaml:10:17: dependencies: cycle: a -> b -> c -> a",
	}},
	{"infra/dep_self.yaml", []string{
		"testdata/bad/infra/dep_self.yaml:6:5: dependencies: cycle: a -> a",
	}},
	{"infra/dep_shapes.yaml", []string{
		"testdata/bad/infra/dep_shapes.yaml:7:5: dependencies[0]: want a list of two nodes [dependent, dependee], e.g. [*app, *db], not a list of 1 item",
		"testdata/bad/infra/dep_shapes.yaml:8:17: dependencies[1].connection: want a list of two nodes [dependent, dependee], e.g. [*app, *db], not the string \"a\"",
		"testdata/bad/infra/dep_shapes.yaml:9:5: dependencies[2]: want a list of two nodes [dependent, dependee], e.g. [*app, *db], not a list of 3 items",
		"testdata/bad/infra/dep_shapes.yaml:10:10: dependencies[3][1]: unknown node \"nope\" (nodes: a, b)",
		"testdata/bad/infra/dep_shapes.yaml:11:6: dependencies[4][0]: this mapping has no name; refer to a node with an alias to its mapping (*app) or its name",
		"testdata/bad/infra/dep_shapes.yaml:13:5: dependencies[5].mapping: unknown key \"mapping\" (allowed: connection, mappings)",
		"testdata/bad/infra/dep_shapes.yaml:14:5: dependencies[6]: want [dependent, dependee] or {connection: [dependent, dependee]}, not the string \"a -> b\"",
		"testdata/bad/infra/dep_shapes.yaml:15:10: dependencies[7][1]: want a node: an alias to its mapping (*app) or its name, not the integer 3",
	}},
	{"infra/duplicate_key.yaml", []string{
		"testdata/bad/infra/duplicate_key.yaml:6:5: duplicate key \"type\" (first at line 5)",
		"testdata/bad/infra/duplicate_key.yaml:7:23: duplicate key \"min\" (first at line 7)",
		"testdata/bad/infra/duplicate_key.yaml:8:1: duplicate key \"infra_name\" (first at line 2)",
	}},
	{"infra/duplicate_names.yaml", []string{
		"testdata/bad/infra/duplicate_names.yaml:10:5: nodes[2].name: duplicate node name \"app\" (first at line 4)",
	}},
	{"infra/empty.yaml", []string{
		"testdata/bad/infra/empty.yaml:1:1: file is empty; an infrastructure descriptor needs user_id, infra_name and nodes",
	}},
	{"infra/import_tag.yaml", []string{
		"testdata/bad/infra/import_tag.yaml:6:16: !yaml_import: cannot read testdata/bad/infra/missing_vars.yaml: no such file or directory",
	}},
	{"infra/missing_required.yaml", []string{
		"testdata/bad/infra/missing_required.yaml:1:1: missing required key \"infra_name\"",
		"testdata/bad/infra/missing_required.yaml:1:1: missing required key \"user_id\"",
		"testdata/bad/infra/missing_required.yaml:2:5: nodes[0]: missing required key \"type\"",
	}},
	{"infra/multi_doc.yaml", []string{
		"testdata/bad/infra/multi_doc.yaml:4:1: file holds more than one YAML document; only one is allowed",
	}},
	{"infra/node_unknown_key.yaml", []string{
		"testdata/bad/infra/node_unknown_key.yaml:6:5: nodes[0].scalling: unknown key \"scalling\" (allowed: name, type, scaling, filter, variables)",
		"testdata/bad/infra/node_unknown_key.yaml:7:5: nodes[0].filters: unknown key \"filters\" (allowed: name, type, scaling, filter, variables)",
	}},
	{"infra/not_a_mapping.yaml", []string{
		"testdata/bad/infra/not_a_mapping.yaml:1:1: want a mapping with the keys user_id, infra_name, nodes, dependencies, variables, not a list of 1 item",
	}},
	{"infra/scaling_max_below_min.yaml", []string{
		"testdata/bad/infra/scaling_max_below_min.yaml:14:12: nodes[2].scaling.max: 1 is below min (3)",
		"testdata/bad/infra/scaling_max_below_min.yaml:18:12: nodes[3].scaling.max: 0 is below min (1)",
	}},
	{"infra/scaling_negative.yaml", []string{
		"testdata/bad/infra/scaling_negative.yaml:6:20: nodes[0].scaling.min: -1 is negative; want an integer >= 0",
		"testdata/bad/infra/scaling_negative.yaml:9:28: nodes[1].scaling.max: -2 is below min (2)",
	}},
	{"infra/scaling_target.yaml", []string{
		"testdata/bad/infra/scaling_target.yaml:10:9: nodes[0].scaling.target: missing required key \"source\"",
		"testdata/bad/infra/scaling_target.yaml:10:16: nodes[0].scaling.target.query: must not be empty",
		"testdata/bad/infra/scaling_target.yaml:11:16: nodes[0].scaling.target.value: 0 is out of range; want a number > 0",
		"testdata/bad/infra/scaling_target.yaml:12:20: nodes[0].scaling.target.tolerance: 1.5 is out of range; want a number >= 0 and < 1",
		"testdata/bad/infra/scaling_target.yaml:13:19: nodes[0].scaling.target.interval: must be longer than 0",
		"testdata/bad/infra/scaling_target.yaml:14:19: nodes[0].scaling.target.max_step: -1 is out of range; want an integer >= 0",
		"testdata/bad/infra/scaling_target.yaml:15:9: nodes[0].scaling.target.window: unknown key \"window\" (allowed: query, value, source, interval, tolerance, max_step, scale_in_stabilization)",
		"testdata/bad/infra/scaling_target.yaml:24:17: nodes[1].scaling.target.source: \"ftp://127.0.0.1:9090\" is not an http:// or https:// URL of a Prometheus-compatible API (e.g. http://127.0.0.1:9090)",
	}},
	{"infra/scaling_types.yaml", []string{
		"testdata/bad/infra/scaling_types.yaml:7:12: nodes[0].scaling.min: want an integer, not the string \"2\"",
		"testdata/bad/infra/scaling_types.yaml:8:12: nodes[0].scaling.max: want an integer, not the number 1.5",
		"testdata/bad/infra/scaling_types.yaml:9:13: nodes[0].scaling.step: 0 is out of range; want an integer >= 1",
		"testdata/bad/infra/scaling_types.yaml:10:17: nodes[0].scaling.cooldown: \"soon\" is not a duration; want a duration such as \"30s\", \"2m\", \"1h30m\" or a number of seconds",
		"testdata/bad/infra/scaling_types.yaml:11:27: nodes[0].scaling.scale_out_cooldown: -5 is negative; want a duration such as \"30s\" or a number of seconds >= 0",
		"testdata/bad/infra/scaling_types.yaml:12:26: nodes[0].scaling.scale_in_cooldown: want a duration such as \"30s\" or a number of seconds, not a list of 1 item",
		"testdata/bad/infra/scaling_types.yaml:13:22: nodes[0].scaling.drain_timeout: \"-1s\" is negative; want a duration such as \"30s\"",
		"testdata/bad/infra/scaling_types.yaml:14:7: nodes[0].scaling.burst: unknown key \"burst\" (allowed: min, max, step, cooldown, scale_out_cooldown, scale_in_cooldown, drain_timeout, target)",
	}},
	{"infra/unknown_tag.yaml", []string{
		"testdata/bad/infra/unknown_tag.yaml:5:11: unknown tag !python_import (allowed: !yaml_import, !text_import and the YAML core tags)",
		"testdata/bad/infra/unknown_tag.yaml:6:14: unknown tag !!set (allowed: !yaml_import, !text_import)",
	}},
	{"infra/unknown_top_key.yaml", []string{
		"testdata/bad/infra/unknown_top_key.yaml:1:1: missing required key \"infra_name\"",
		"testdata/bad/infra/unknown_top_key.yaml:2:1: infra_nam: unknown key \"infra_nam\" (allowed: user_id, infra_name, nodes, dependencies, variables)",
	}},
	{"infra/wrong_types.yaml", []string{
		"testdata/bad/infra/wrong_types.yaml:1:10: user_id: want a string, not a list of 1 item",
		"testdata/bad/infra/wrong_types.yaml:4:3: nodes: want a list of nodes, not a mapping",
		"testdata/bad/infra/wrong_types.yaml:6:15: dependencies: want a list of [dependent, dependee] pairs or {connection: [dependent, dependee]} mappings, not a mapping",
		"testdata/bad/infra/wrong_types.yaml:7:12: variables: want a mapping, not a list of 2 items",
	}},
	{"infra/wrong_types_node.yaml", []string{
		"testdata/bad/infra/wrong_types_node.yaml:5:11: nodes[0].type: want a string, not the integer 42",
		"testdata/bad/infra/wrong_types_node.yaml:6:14: nodes[0].scaling: want a mapping with the keys min, max, step, cooldown, scale_out_cooldown, scale_in_cooldown, drain_timeout, target, not a list of 2 items",
		"testdata/bad/infra/wrong_types_node.yaml:7:13: nodes[0].filter: want a mapping, not the string \"ec2\"",
		"testdata/bad/infra/wrong_types_node.yaml:8:16: nodes[0].variables: want a mapping, not a list of 1 item",
		"testdata/bad/infra/wrong_types_node.yaml:9:5: nodes[1]: want a mapping with the keys name, type, scaling, filter, variables, not the string \"just-a-string\"",
		"testdata/bad/infra/wrong_types_node.yaml:10:5: nodes[2]: want a mapping with the keys name, type, scaling, filter, variables, not a list of 0 items",
	}},
	{"infra/yaml_syntax.yaml", []string{
		"testdata/bad/infra/yaml_syntax.yaml:3: invalid YAML: did not find expected '-' indicator (in the list that starts on this line: a line below it is not indented like its items)",
	}},
	{"nodedefs/config_management.yaml", []string{
		"testdata/bad/nodedefs/config_management.yaml:4:7: node_def:a[0].config_management: missing required key \"run_list\"",
		"testdata/bad/nodedefs/config_management.yaml:8:13: node_def:a[1].config_management.type: \"ansible\" is not allowed (allowed: dummy, chef, puppet_solo)",
		"testdata/bad/nodedefs/config_management.yaml:13:7: node_def:a[2].config_management.hiera: unknown key \"hiera\" (allowed: type, manifests, modules, attributes)",
	}},
	{"nodedefs/contextualisation.yaml", []string{
		"testdata/bad/nodedefs/contextualisation.yaml:4:7: node_def:a[0].contextualisation: missing required key \"context_template\"",
		"testdata/bad/nodedefs/contextualisation.yaml:5:7: node_def:a[0].contextualisation.template: unknown key \"template\" (allowed: type, context_template, attributes)",
		"testdata/bad/nodedefs/contextualisation.yaml:8:7: node_def:a[1].contextualisation: missing required key \"type\" (one of: cloudinit, docker, basic, process)",
		"testdata/bad/nodedefs/contextualisation.yaml:11:13: node_def:a[2].contextualisation.type: \"ansible\" is not allowed (allowed: cloudinit, docker, basic, process)",
		"testdata/bad/nodedefs/contextualisation.yaml:15:25: node_def:a[3].contextualisation.context_template: want a string or a mapping (e.g. !yaml_import {url: file://cloud_init.yaml}), not a list of 2 items",
		"testdata/bad/nodedefs/contextualisation.yaml:19:16: node_def:a[4].contextualisation.command: want a string, not the integer 42",
		"testdata/bad/nodedefs/contextualisation.yaml:20:12: node_def:a[4].contextualisation.env: want a list of strings, not the string \"A=1\"",
		"testdata/bad/nodedefs/contextualisation.yaml:21:26: node_def:a[4].contextualisation.context_variables: want a mapping or a string, not a list of 1 item",
		"testdata/bad/nodedefs/contextualisation.yaml:25:16: node_def:a[5].contextualisation.command: want a list of strings (the program and its arguments), not the string \"skyfleet app\"",
		"testdata/bad/nodedefs/contextualisation.yaml:26:31: node_def:a[5].contextualisation.env.LIST: want a string, number or boolean, not a list of 1 item",
		"testdata/bad/nodedefs/contextualisation.yaml:27:16: node_def:a[5].contextualisation.workdir: \"/srv\" must be a relative path inside the instance's working directory",
		"testdata/bad/nodedefs/contextualisation.yaml:29:9: node_def:a[5].contextualisation.files.../escape.sh: file name \"../escape.sh\" must be a relative path inside the working directory",
		"testdata/bad/nodedefs/contextualisation.yaml:30:9: node_def:a[5].contextualisation.files./etc/passwd: file name \"/etc/passwd\" must be a relative path inside the working directory",
		"testdata/bad/nodedefs/contextualisation.yaml:31:17: node_def:a[5].contextualisation.files.ok.txt: want a string, not the integer 5",
		"testdata/bad/nodedefs/contextualisation.yaml:35:16: node_def:a[6].contextualisation.command: must not be empty: give the program and its arguments",
	}},
	{"nodedefs/docker_context.yaml", []string{
		"testdata/bad/nodedefs/docker_context.yaml:9:7: node_def:a[0].contextualisation.type: resource type docker needs contextualisation type docker, not \"cloudinit\"",
		"testdata/bad/nodedefs/docker_context.yaml:11:5: node_def:a[1].contextualisation: resource type docker needs a contextualisation section of type docker (env, command)",
	}},
	{"nodedefs/health_check.yaml", []string{
		"testdata/bad/nodedefs/health_check.yaml:4:14: node_def:a[0].health_check.ports: want a list of port numbers (1..65535), not the string \"80\"",
		"testdata/bad/nodedefs/health_check.yaml:5:13: node_def:a[0].health_check.ping: want true or false, not the string \"maybe\"",
		"testdata/bad/nodedefs/health_check.yaml:6:16: node_def:a[0].health_check.timeout: 0 is out of range; want an integer from 1 to 2147483647",
		"testdata/bad/nodedefs/health_check.yaml:7:13: node_def:a[0].health_check.urls: want a list of URLs, not the string \"http://127.0.0.1/\"",
		"testdata/bad/nodedefs/health_check.yaml:10:13: node_def:a[1].health_check.type: \"advanced\" is not allowed (allowed: basic)",
		"testdata/bad/nodedefs/health_check.yaml:11:15: node_def:a[1].health_check.ports[0]: 0 is out of range; want an integer from 1 to 65535",
		"testdata/bad/nodedefs/health_check.yaml:11:18: node_def:a[1].health_check.ports[1]: 70000 is out of range; want an integer from 1 to 65535",
		"testdata/bad/nodedefs/health_check.yaml:11:25: node_def:a[1].health_check.ports[2]: want an integer, not the string \"8080\"",
		"testdata/bad/nodedefs/health_check.yaml:12:16: node_def:a[1].health_check.timeout: want an integer, not the string \"600\"",
		"testdata/bad/nodedefs/health_check.yaml:13:7: node_def:a[1].health_check.multiplier: unknown key \"multiplier\" (allowed: type, ping, ports, urls, mysqldbs, timeout, interval)",
		"testdata/bad/nodedefs/health_check.yaml:15:11: node_def:a[1].health_check.mysqldbs[0]: missing required key \"pass\"",
		"testdata/bad/nodedefs/health_check.yaml:16:11: node_def:a[1].health_check.mysqldbs[1]: want a mapping with the keys name, user, pass, not the string \"db\"",
		"testdata/bad/nodedefs/health_check.yaml:17:17: node_def:a[1].health_check.interval: must be longer than 0",
	}},
	{"nodedefs/impl_sections.yaml", []string{
		"testdata/bad/nodedefs/impl_sections.yaml:2:5: node_def:app[0]: missing required key \"resource\"",
		"testdata/bad/nodedefs/impl_sections.yaml:2:5: node_def:app[0].resources: unknown key \"resources\" (allowed: resource, contextualisation, health_check, config_management)",
		"testdata/bad/nodedefs/impl_sections.yaml:4:5: node_def:app[1].contextualization: unknown key \"contextualization\" (allowed: resource, contextualisation, health_check, config_management)",
		"testdata/bad/nodedefs/impl_sections.yaml:6:5: node_def:app[2]: want a mapping with the keys resource, contextualisation, health_check, config_management, not the string \"just a string\"",
	}},
	{"nodedefs/import_cycle.yaml", []string{
		"testdata/bad/nodedefs/imports/cycle_b.yaml:2:14: import cycle: cycle_a.yaml -> cycle_b.yaml -> cycle_a.yaml",
	}},
	{"nodedefs/import_errors_inside.yaml", []string{
		"testdata/bad/nodedefs/imports/bad_context.yaml:3:1: node_def:a[0].contextualisation.attribs: unknown key \"attribs\" (allowed: type, context_template, attributes)",
		"testdata/bad/nodedefs/imports/broken.yaml:2: invalid YAML: did not find expected node content (in the value that starts on this line)",
	}},
	{"nodedefs/import_forms.yaml", []string{
		"testdata/bad/nodedefs/import_forms.yaml:5:25: !yaml_import takes a mapping {url: file://PATH}, not the scalar \"file://imports/ok.yaml\"",
		"testdata/bad/nodedefs/import_forms.yaml:9:39: unknown key \"path\" in !yaml_import (allowed: url)",
		"testdata/bad/nodedefs/import_forms.yaml:13:25: !yaml_import url \"https://example.org/cloud_init.yaml\": unsupported scheme; only file:// URLs are supported",
		"testdata/bad/nodedefs/import_forms.yaml:17:25: !text_import url \"file://\" names no file; write file://PATH",
	}},
	{"nodedefs/import_missing.yaml", []string{
		"testdata/bad/nodedefs/import_missing.yaml:5:25: !yaml_import: cannot read testdata/bad/nodedefs/no_such_file.yaml: no such file or directory",
		"testdata/bad/nodedefs/import_missing.yaml:10:25: !text_import: cannot read testdata/bad/nodedefs/imports: not a regular file",
	}},
	{"nodedefs/local_sim.yaml", []string{
		"testdata/bad/nodedefs/local_sim.yaml:4:13: node_def:a[0].resource.cpus: 0 is out of range; want a number of CPUs > 0 (e.g. 0.5)",
		"testdata/bad/nodedefs/local_sim.yaml:5:15: node_def:a[0].resource.memory: \"lots\" is not a size; want e.g. \"512M\", \"256Mi\" or a number of bytes",
		"testdata/bad/nodedefs/local_sim.yaml:6:22: node_def:a[0].resource.address_range: \"10.0.0.0/8\" is outside 127.0.0.0/8; instances may only use loopback addresses",
		"testdata/bad/nodedefs/local_sim.yaml:7:13: node_def:a[0].resource.name: want a string, not a list of 1 item",
		"testdata/bad/nodedefs/local_sim.yaml:8:50: node_def:a[0].contextualisation.command[0]: want a string, not the boolean true",
		"testdata/bad/nodedefs/local_sim.yaml:11:18: node_def:a[1].resource.boot_time: \"fast\" is not a duration; want a duration such as \"30s\", \"2m\", \"1h30m\" or a number of seconds",
		"testdata/bad/nodedefs/local_sim.yaml:12:21: node_def:a[1].resource.failure_rate: 1.5 is out of range; want a number from 0 to 1",
		"testdata/bad/nodedefs/local_sim.yaml:13:23: node_def:a[1].resource.api_error_rate: want a number, not the string \"0.1\"",
		"testdata/bad/nodedefs/local_sim.yaml:15:22: node_def:a[1].resource.address_range: \"not-a-prefix\" is not an IPv4 address prefix; want e.g. \"10.77.0.0/16\"",
		"testdata/bad/nodedefs/local_sim.yaml:16:7: node_def:a[1].resource.flavor: unknown key \"flavor\" (allowed: type, name, boot_time, failure_rate, api_error_rate, lose_response_rate, latency, address_range)",
	}},
	{"nodedefs/resource_keys.yaml", []string{
		"testdata/bad/nodedefs/resource_keys.yaml:3:7: node_def:ec2[0].resource: missing required key \"image_id\"",
		"testdata/bad/nodedefs/resource_keys.yaml:6:7: node_def:ec2[0].resource.instance: unknown key \"instance\" (allowed: type, endpoint, regionname, image_id, instance_type, key_name, security_group_ids, subnet_id, name, tags)",
		"testdata/bad/nodedefs/resource_keys.yaml:8:7: node_def:ec2[0].resource.security_groups: unknown key \"security_groups\" (allowed: type, endpoint, regionname, image_id, instance_type, key_name, security_group_ids, subnet_id, name, tags)",
		"testdata/bad/nodedefs/resource_keys.yaml:11:7: node_def:nova[0].resource: missing required key \"flavor_name\"",
		"testdata/bad/nodedefs/resource_keys.yaml:11:7: node_def:nova[0].resource: missing required key \"project_id\"",
		"testdata/bad/nodedefs/resource_keys.yaml:14:7: node_def:nova[0].resource.flavour_name: unknown key \"flavour_name\" (allowed: type, endpoint, image_id, flavor_name, project_id, server_name, key_name, security_groups, floating_ip, floating_ip_pool, name, tenant_name, user_domain_name, network_id, region_name, volume_size, volume_persist)",
		"testdata/bad/nodedefs/resource_keys.yaml:17:7: node_def:docker[0].resource: missing required key \"origin\"",
		"testdata/bad/nodedefs/resource_keys.yaml:17:7: node_def:docker[0].resource: missing required key \"tag\"",
		"testdata/bad/nodedefs/resource_keys.yaml:25:7: node_def:azure[0].resource: azure_vm needs one of the keys password or ssh_key_data",
	}},
	{"nodedefs/resource_types.yaml", []string{
		"testdata/bad/nodedefs/resource_types.yaml:3:13: node_def:app[0].resource.type: \"aws\" is not allowed (allowed: ec2, nova, docker, azure_vm, azure_aci, cloudbroker, cloudsigma, local, sim)",
		"testdata/bad/nodedefs/resource_types.yaml:6:7: node_def:app[1].resource: missing required key \"type\" (one of: ec2, nova, docker, azure_vm, azure_aci, cloudbroker, cloudsigma, local, sim)",
		"testdata/bad/nodedefs/resource_types.yaml:8:13: node_def:app[2].resource.type: want a string, not the integer 3",
		"testdata/bad/nodedefs/resource_types.yaml:9:15: node_def:app[3].resource: want a mapping, not the string \"sim\"",
	}},
	{"nodedefs/top_level_keys.yaml", []string{
		"testdata/bad/nodedefs/top_level_keys.yaml:3:1: node:db: unknown key \"node:db\": a node definition file holds only 'node_def:NAME' keys",
		"testdata/bad/nodedefs/top_level_keys.yaml:5:1: node_def:: \"node_def:\" names no node type: write 'node_def:NAME' with a NAME without spaces",
		"testdata/bad/nodedefs/top_level_keys.yaml:7:19: node_def:empty: node type \"empty\" has no implementations; give at least one with a resource section",
		"testdata/bad/nodedefs/top_level_keys.yaml:9:3: node_def:notalist: want a list of implementations, not a mapping",
	}},
}

// TestBadDescriptors loads every bad fixture and compares all of its errors, line by line,
// with the table: each rule's message names the file:line:col, the key path, the bad value
// and what is allowed.
func TestBadDescriptors(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range badFixtures {
		covered[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tc.file)
			var err error
			if strings.HasPrefix(tc.file, "infra/") {
				_, _, err = LoadInfraFile(path)
			} else {
				_, _, err = LoadNodeDefsFile(path)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("got error %v (%T), want Errors", err, err)
			}
			got := strings.Split(es.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors differ\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	// Every fixture must be in the table, so that a new one cannot be forgotten.
	for _, dir := range []string{"infra", "nodedefs"} {
		files, err := filepath.Glob(filepath.Join("testdata", "bad", dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			rel := dir + "/" + filepath.Base(f)
			if !covered[rel] {
				t.Errorf("fixture %s has no entry in badFixtures", rel)
			}
		}
	}
}
