package docker

import (
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

func baseResource() map[string]any {
	return map[string]any{
		"type": "docker", "endpoint": "unix:///var/run/docker.sock", "origin": "local",
		"image": "skyfleet/app", "tag": "1.0",
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
	tests := []struct {
		name string
		in   map[string]any
		want Resource
	}{
		{
			name: "occopus keys",
			in:   with(baseResource(), "name", "web-1"),
			want: Resource{Type: "docker", Endpoint: "unix:///var/run/docker.sock", Origin: "local", Image: "skyfleet/app", Tag: "1.0", Name: "web-1"},
		},
		{
			name: "extras",
			in:   with(baseResource(), "network", "app-net", "cpus", 0.5, "memory", "256m", "origin", "dockerhub", "endpoint", "tcp://127.0.0.1:2375"),
			want: Resource{Type: "docker", Endpoint: "tcp://127.0.0.1:2375", Origin: "dockerhub", Image: "skyfleet/app", Tag: "1.0",
				Network: "app-net", NanoCPUs: 500_000_000, Memory: 256 << 20},
		},
		{
			name: "integer tag and cpus, memory in bytes, tarball origin",
			in:   with(baseResource(), "tag", 20, "cpus", 2, "memory", 1<<30, "origin", "file:///srv/images/app.tar"),
			want: Resource{Type: "docker", Endpoint: "unix:///var/run/docker.sock", Origin: "file:///srv/images/app.tar", Image: "skyfleet/app", Tag: "20",
				NanoCPUs: 2_000_000_000, Memory: 1 << 30},
		},
		{
			name: "registry with a port in the image name",
			in:   with(baseResource(), "image", "localhost:5000/app", "origin", "https://images.example/app.tar.gz"),
			want: Resource{Type: "docker", Endpoint: "unix:///var/run/docker.sock", Origin: "https://images.example/app.tar.gz", Image: "localhost:5000/app", Tag: "1.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeResource(tt.in)
			if err != nil {
				t.Fatalf("DecodeResource: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeResourceErrors(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want []string
	}{
		{"unknown key names the allowed ones", with(baseResource(), "ports", []any{8080}),
			[]string{"resource.ports: unknown key (allowed: cpus, endpoint, image, memory, name, network, origin, tag, type)"}},
		{"missing required keys all at once", map[string]any{"type": "docker"},
			[]string{"resource.endpoint: missing", "resource.origin: missing", "resource.image: missing", "resource.tag: missing"}},
		{"tls endpoint", with(baseResource(), "endpoint", "https://docker.example:2376"),
			[]string{"resource.endpoint: \"https://docker.example:2376\": TLS endpoints are not supported (as in Occopus)"}},
		{"tls port", with(baseResource(), "endpoint", "tcp://10.0.0.5:2376"), []string{"Docker TLS port; TLS endpoints are not supported"}},
		{"http endpoint", with(baseResource(), "endpoint", "http://127.0.0.1:2375"), []string{"write plain HTTP endpoints as tcp://127.0.0.1:2375"}},
		{"bad origin", with(baseResource(), "origin", "quay"), []string{`resource.origin: "quay" is not allowed; want dockerhub, local, or the location of an image tarball`}},
		{"relative file origin", with(baseResource(), "origin", "file://images/a.tar"), []string{"a file URL needs an absolute path"}},
		{"float tag", with(baseResource(), "tag", 3.1), []string{`resource.tag: 3.1 is a number; quote it (tag: "3.1")`}},
		{"tag in image", with(baseResource(), "image", "nginx:1.25"), []string{`resource.image: "nginx:1.25" carries a tag or digest`}},
		{"cpus", with(baseResource(), "cpus", "lots"), []string{"resource.cpus: lots is not allowed; want a number of CPUs of at least 0.01"}},
		{"memory too small", with(baseResource(), "memory", "1m"), []string{`resource.memory: "1m" is not allowed; want a size of at least 6m`}},
		{"memory garbage", with(baseResource(), "memory", "much"), []string{`resource.memory: "much" is not allowed`}},
		{"bad name", with(baseResource(), "name", "web 1"), []string{`resource.name: "web 1" is not a valid container name`}},
		{"host network", with(baseResource(), "network", "host"), []string{`resource.network: "host" gives the container no address of its own`}},
		{"wrong type", with(baseResource(), "type", "ec2"), []string{`resource.type: "ec2" is not docker`}},
		{"non-string image", with(baseResource(), "image", []any{"a"}), []string{"resource.image: [a] is a list; want a string"}},
		{"empty tag", with(baseResource(), "tag", ""), []string{"resource.tag: must not be empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeResource(tt.in)
			if err == nil {
				t.Fatal("DecodeResource succeeded, want error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\ndoes not contain %q", err, s)
				}
			}
		})
	}
}

func TestDecodeContext(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]any
		want    Context
		wantErr []string
	}{
		{name: "none", in: nil, want: Context{}},
		{
			name: "occopus example",
			in: map[string]any{"type": "docker", "env": []any{"message=hello world", "B64=aGk="},
				"command": "sh -c /root/start.sh", "context_variables": map[string]any{"message": "x"}},
			want: Context{Env: []string{"message=hello world", "B64=aGk="}, Command: []string{"sh", "-c", "/root/start.sh"}},
		},
		{
			name: "quoted command and env mapping",
			in:   map[string]any{"type": "docker", "env": map[string]any{"B": 2, "A": "x=y"}, "command": `sh -c "echo 'a b' \"q\"" x\ y`},
			want: Context{Env: []string{"A=x=y", "B=2"}, Command: []string{"sh", "-c", `echo 'a b' "q"`, "x y"}},
		},
		{
			name: "command list",
			in:   map[string]any{"type": "docker", "env": []any{}, "command": []any{"/app", "--listen=:9000", 3}},
			want: Context{Env: nil, Command: []string{"/app", "--listen=:9000", "3"}},
		},
		{name: "wrong type", in: map[string]any{"type": "cloudinit", "context_template": "x"},
			wantErr: []string{"contextualisation.type: cloudinit is not allowed for a docker resource", "contextualisation.context_template: unknown key (allowed: command, context_variables, env, type)"}},
		{name: "env item without =", in: map[string]any{"type": "docker", "env": []any{"PASSWORD"}},
			wantErr: []string{`contextualisation.env: item 0 has no "="; want a "KEY=VALUE" string`}},
		{name: "env item with a bad name", in: map[string]any{"type": "docker", "env": []any{"1X=a"}},
			wantErr: []string{`contextualisation.env: item 0: "1X" is not a variable name`}},
		{name: "env is a string", in: map[string]any{"type": "docker", "env": "A=1"},
			wantErr: []string{`contextualisation.env: is a string; want a list of "KEY=VALUE" strings`}},
		{name: "unclosed quote", in: map[string]any{"type": "docker", "env": []any{}, "command": "sh -c 'echo"},
			wantErr: []string{"contextualisation.command: command has an unclosed single quote"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeContext(tt.in)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("DecodeContext = %+v, want error", got)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q\ndoes not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeContext: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeContextNeverEchoesEnvValues(t *testing.T) {
	for _, env := range [][]any{{"OK=1", "s3cr3t-VALUE"}, {"PASS WORD=s3cr3t-VALUE"}, {1, "A=s3cr3t-VALUE"}} {
		_, err := DecodeContext(map[string]any{"type": "docker", "env": env})
		if err == nil {
			t.Fatalf("env %q: want an error", env)
		}
		if strings.Contains(err.Error(), "s3cr3t-VALUE") {
			t.Errorf("error quotes an env value: %v", err)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "  /app   --x=1 ", want: []string{"/app", "--x=1"}},
		{in: `a 'b c' "d e"`, want: []string{"a", "b c", "d e"}},
		{in: `'it''s' "a\"b" "\$HOME" "\n"`, want: []string{"its", `a"b`, "$HOME", `\n`}},
		{in: `a\ b c\\d`, want: []string{"a b", `c\d`}},
		{in: `''`, want: []string{""}},
		{in: "x \\\ny", want: []string{"x", "y"}},
		{in: `"unclosed`, err: "unclosed double quote"},
		{in: `trailing\`, err: "lone backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SplitWords(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("SplitWords = %q, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitWords = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestStateMapping(t *testing.T) {
	tests := []struct {
		name   string
		state  *container.State
		want   cloud.State
		detail string
	}{
		{"running", &container.State{Status: "running", Running: true}, cloud.StateRunning, ""},
		{"created, never started", &container.State{Status: "created"}, cloud.StatePending, "created, not started yet"},
		{"restarting", &container.State{Status: "restarting", Running: true, Restarting: true}, cloud.StatePending, "restarting"},
		{"paused", &container.State{Status: "paused", Running: true, Paused: true}, cloud.StateStopped, "paused"},
		{"exit code -1 is temp_failed", &container.State{Status: "exited", ExitCode: -1}, cloud.StateStopped, "exited with code -1"},
		{"killed", &container.State{Status: "exited", ExitCode: 137}, cloud.StateFailed, "exited with code 137"},
		{"stopped cleanly", &container.State{Status: "exited", ExitCode: 0}, cloud.StateFailed, "exited with code 0"},
		{"oom", &container.State{Status: "exited", ExitCode: 137, OOMKilled: true}, cloud.StateFailed, "exited with code 137 (killed: out of memory)"},
		{"start error", &container.State{Status: "exited", ExitCode: 127, Error: "exec: not found"}, cloud.StateFailed, "exited with code 127: exec: not found"},
		{"dead", &container.State{Status: "dead", Dead: true}, cloud.StateFailed, "dead"},
		{"removing", &container.State{Status: "removing"}, cloud.StateGone, "being removed"},
		{"no state", nil, cloud.StateGone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := stateOf(tt.state)
			if got != tt.want || detail != tt.detail {
				t.Errorf("stateOf = %s, %q; want %s, %q", got, detail, tt.want, tt.detail)
			}
		})
	}
}

func TestNames(t *testing.T) {
	if got := DefaultContainerName("web_node", "0f8c2a91-1111-2222"); got != "skyfleet-web_node-0f8c2a91" {
		t.Errorf("DefaultContainerName = %q", got)
	}
	if got := DefaultContainerName("ünï node!", "abc"); got != "skyfleet-n-node-abc" {
		t.Errorf("DefaultContainerName with odd characters = %q", got)
	}
	if got := DefaultNetworkName("4e1f77aa-bbbb"); got != "skyfleet-4e1f77aa" {
		t.Errorf("DefaultNetworkName = %q", got)
	}
	if got := hostname(strings.Repeat("a", 70) + "_x"); len(got) != 63 || strings.ContainsAny(got, "_.") {
		t.Errorf("hostname = %q", got)
	}
}

func TestDriverBind(t *testing.T) {
	d := NewDriver(Options{})
	defer d.Close()
	p1, err := d.Bind(baseResource(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := d.Bind(with(baseResource(), "image", "other", "name", "x"), cloud.NewCredentials(map[string]any{"k": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Errorf("two resources on one endpoint got two providers")
	}
	p3, err := d.Bind(with(baseResource(), "endpoint", "tcp://127.0.0.1:1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p3 == p1 {
		t.Errorf("another endpoint reused the first provider")
	}
	if _, err := d.Bind(with(baseResource(), "colour", "blue"), nil); err == nil || !strings.Contains(err.Error(), "resource.colour: unknown key") {
		t.Errorf("Bind with an unknown key = %v", err)
	}
}

func TestUnreachableEngineIsRetryable(t *testing.T) {
	// Nothing listens on port 1 of the loopback address: the connection is refused at once.
	p, err := New("tcp://127.0.0.1:1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := t.Context()
	_, err = p.Describe(ctx, "abc")
	if err == nil || !cloud.IsRetryable(err) {
		t.Fatalf("Describe on an unreachable engine = %v; want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "docker ping at tcp://127.0.0.1:1") {
		t.Errorf("error %q does not name the operation and endpoint", err)
	}
	if _, err := New("https://127.0.0.1:2376", Options{}); err == nil || !strings.Contains(err.Error(), "TLS endpoints are not supported") {
		t.Errorf("New with a TLS endpoint = %v", err)
	}
}
