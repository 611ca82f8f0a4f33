package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// renderFixture runs `skyfleet render` on the fixture under testdata/render with args.
func renderFixture(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	dir := filepath.Join("testdata", "render")
	full := append([]string{"render", "--nodes", filepath.Join(dir, "nodes.yaml"), "--infra", filepath.Join(dir, "infra.yaml")}, args...)
	var out, errOut bytes.Buffer
	code = Main(context.Background(), full, nil, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestRenderGolden(t *testing.T) {
	const id = "--node-id=11111111-2222-4333-8444-555555555555"
	tests := []struct {
		name string
		args []string
	}{
		// app: cloud-init from !text_import with getip, a filter choosing one of two implementations,
		// a health-check URL with the instance's own address.
		{"app", []string{"--node", "app", "--ip", "db=10.0.0.5", id}},
		// lb: consul-template kept by a raw block and '{{' escapes, getipall over two instances,
		// and an undefined variable (app_port belongs to app) reported on stderr.
		{"lb", []string{"--node", "lb", "--ip", "app=10.0.1.1", "--ip", "app=10.0.1.2/192.168.0.2", "--self-ip", "127.0.0.9", id}},
		// db: a !yaml_import mapping dumped as #cloud-config and rendered; templated EC2 tags.
		{"db", []string{"--node", "db", "--infra-id", "3f1c2a9e-77aa-4b0e-9d51-0c8e9f5b1234", id}},
		// hello: docker contextualisation with context_variables and b64encode.
		{"hello", []string{"--node", "hello", id}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := renderFixture(t, tt.args...)
			got := fmt.Sprintf("%s--- stderr (exit %d) ---\n%s", stdout, code, stderr)
			checkGolden(t, filepath.Join("testdata", "render", tt.name+".golden"), []byte(got))
			if code != 0 {
				t.Errorf("exit %d", code)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"getip without --ip", []string{"--node", "app"},
			`template node_def:app_node.contextualisation.context_template line 5: getip('db'): node "db" has no instance yet; pass --ip db=ADDRESS to render with an address for it`},
		{"strict undefined", []string{"--node", "lb", "--ip", "app=10.0.1.1", "--strict"},
			`template node_def:lb_node.contextualisation.context_template line 17: undefined variable "variables.app_port"`},
		{"unknown node", []string{"--node", "nope"}, `infra.yaml has no node named "nope" (nodes: db, app, lb, hello)`},
		{"--ip of an unknown node", []string{"--node", "app", "--ip", "cache=10.0.0.1"}, `--ip cache=...: testdata/render/infra.yaml has no node named "cache"`},
		{"malformed --ip", []string{"--node", "app", "--ip", "db"}, `--ip "db": want NODE=ADDR or NODE=ADDR/PRIVATE`},
		{"--impl out of range", []string{"--node", "app", "--ip", "db=10.0.0.5", "--impl", "1"},
			`--impl 1: node "app" has 1 implementation(s) of "app_node" matching its filter; use 0..0`},
		{"command-line values are not templates", []string{"--node", "app", "--ip", "db=10.0.0.5", "--infra-id", "{{ cmd('id') }}"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := renderFixture(t, tt.args...)
			if tt.want == "" {
				// Values given on the command line are data, not templates.
				if code != 0 || !strings.Contains(stdout, "INFRA={{ cmd('id') }}") {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
				}
				return
			}
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout not empty on error: %q", stdout)
			}
		})
	}
}

func TestRenderDefaults(t *testing.T) {
	stdout, _, code := renderFixture(t, "--node", "app", "--ip", "db=10.0.0.5")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	// A fresh node_id each time, a fixed placeholder infra_id, and <ip> in health-check URLs.
	ids := regexp.MustCompile(`# node_id: ([0-9a-f-]{36})\n`).FindStringSubmatch(stdout)
	if ids == nil {
		t.Fatalf("no node_id line in:\n%s", stdout)
	}
	stdout2, _, _ := renderFixture(t, "--node", "app", "--ip", "db=10.0.0.5")
	if strings.Contains(stdout2, ids[1]) {
		t.Errorf("node_id %s repeated across renders", ids[1])
	}
	for _, want := range []string{"# infra_id: 00000000-0000-0000-0000-000000000000", "INFRA=00000000-0000-0000-0000-000000000000", "- http://<ip>:8080/health", "name: app-" + ids[1][:8]} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestRenderBadDescriptor(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"render", "--nodes", filepath.Join("testdata", "render", "infra.yaml"),
		"--infra", filepath.Join("testdata", "render", "infra.yaml"), "--node", "app"}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "infra.yaml") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestRenderTemplateCmd(t *testing.T) {
	dir := t.TempDir()
	nodes := `'node_def:n':
  - resource:
      type: sim
    contextualisation:
      type: cloudinit
      context_template: "#cloud-config\nbootcmd: ['{{ cmd(\"echo from-cmd\") }}']\n"
`
	infra := "user_id: u\ninfra_name: cmdtest\nnodes:\n  - name: n\n    type: n\n    scaling: {min: 1, max: 1}\n"
	for name, data := range map[string]string{"nodes.yaml": nodes, "infra.yaml": infra} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(extra ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		args := append([]string{"render", "--nodes", filepath.Join(dir, "nodes.yaml"), "--infra", filepath.Join(dir, "infra.yaml"), "--node", "n"}, extra...)
		code := Main(context.Background(), args, nil, &out, &errOut)
		return out.String(), errOut.String(), code
	}
	_, stderr, code := run()
	if code != 1 || !strings.Contains(stderr, "cmd() is disabled; start the server with --allow-template-cmd to enable it") {
		t.Errorf("without the flag: exit %d, stderr %q", code, stderr)
	}
	stdout, stderr, code := run("--allow-template-cmd")
	if code != 0 || !strings.Contains(stdout, "bootcmd: ['from-cmd']") {
		t.Errorf("with the flag: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestRenderGetipOfUndefinedNodeAnswersFromEveryInstance: as in Occopus, getip() given an
// undefined name answers with the oldest instance of the infrastructure (real descriptor sets
// rely on it), here the first --ip.
func TestRenderGetipOfUndefinedNodeAnswersFromEveryInstance(t *testing.T) {
	dir := t.TempDir()
	nodes := filepath.Join(dir, "nodes.yaml")
	infra := filepath.Join(dir, "infra.yaml")
	if err := os.WriteFile(nodes, []byte("'node_def:worker':\n  - resource: {type: sim}\n    contextualisation:\n      type: cloudinit\n      context_template: |\n        #cloud-config\n        runcmd: [\"join {{getip(variables.master)}}\"]\n'node_def:master':\n  - resource: {type: sim}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(infra, []byte("user_id: u\ninfra_name: q\nnodes:\n  - &m {name: master, type: master}\n  - &w {name: worker, type: worker}\ndependencies:\n  - [*w, *m]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"render", "--nodes", nodes, "--infra", infra, "--node", "worker", "--ip", "master=10.1.2.3", "--ip", "worker=10.9.9.9"}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "join 10.1.2.3") {
		t.Errorf("rendered:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "answers from every instance") {
		t.Errorf("no warning about the undefined name: %s", stderr.String())
	}
}
