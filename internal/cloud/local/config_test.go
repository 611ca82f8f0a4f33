package local

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeResource(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want Resource
		errs []string
	}{
		{name: "nil is every default", in: nil, want: Resource{}},
		{name: "all keys", in: map[string]any{"type": "local", "name": "web", "cpus": 1.5, "memory": "256Mi", "address_range": "127.50.0.0/16"},
			want: Resource{Name: "web", CPUs: 1.5, Memory: 256 << 20, AddressRange: "127.50.0.0/16"}},
		{name: "integer cpus and byte memory", in: map[string]any{"type": "local", "cpus": 2, "memory": 1000000},
			want: Resource{CPUs: 2, Memory: 1000000}},
		{name: "decimal units", in: map[string]any{"memory": "1.5G"}, want: Resource{Memory: 1500000000}},
		{name: "unknown key", in: map[string]any{"type": "local", "image": "x"},
			errs: []string{"resource.image: unknown key for type local (allowed: address_range, cpus, memory, name, type)"}},
		{name: "zero cpus", in: map[string]any{"cpus": 0}, errs: []string{"resource.cpus: 0 is not a positive number of CPUs"}},
		{name: "memory garbage", in: map[string]any{"memory": "lots"}, errs: []string{`resource.memory: "lots" is not a size`}},
		{name: "range outside loopback", in: map[string]any{"address_range": "10.0.0.0/8"},
			errs: []string{`resource.address_range: "10.0.0.0/8" is not inside the loopback range 127.0.0.0/8`}},
		{name: "range only 127.0.0.1", in: map[string]any{"address_range": "127.0.0.0/30"},
			errs: []string{"has no usable address besides 127.0.0.1"}},
		{name: "all at once", in: map[string]any{"type": "docker", "cpus": "many", "x": 1},
			errs: []string{"resource.type: docker is not local", "resource.cpus: many", "resource.x: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeResource(tt.in)
			if len(tt.errs) == 0 {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("DecodeResource = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeResource(%v) succeeded", tt.in)
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeContext(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want Context
		errs []string
	}{
		{name: "full", in: map[string]any{
			"type": "process", "command": []any{"skyfleet", "lb", "--port", 8080},
			"env": map[string]any{"A": "1", "PORT": 80, "DEBUG": true}, "files": map[string]any{"a/b.txt": "x"},
			"workdir": "run",
		}, want: Context{
			Command: []string{"skyfleet", "lb", "--port", "8080"},
			Env:     map[string]string{"A": "1", "PORT": "80", "DEBUG": "true"},
			Files:   map[string]string{"a/b.txt": "x"}, Workdir: "run",
		}},
		{name: "missing section", in: nil, errs: []string{"contextualisation: missing (want type: process with a command)"}},
		{name: "missing command", in: map[string]any{"type": "process"},
			errs: []string{"contextualisation.command: missing"}},
		{name: "other type", in: map[string]any{"type": "cloudinit", "command": []any{"x"}},
			errs: []string{"contextualisation.type: cloudinit is not supported by the local provider (allowed: process)"}},
		{name: "command as string", in: map[string]any{"type": "process", "command": "sh -c x"},
			errs: []string{"contextualisation.command: sh -c x is not a non-empty list of strings"}},
		{name: "escaping file and workdir", in: map[string]any{"type": "process", "command": []any{"x"},
			"files": map[string]any{"../../etc/passwd": "x"}, "workdir": "/tmp"},
			errs: []string{`contextualisation.files: path "../../etc/passwd" leaves the working directory`,
				`contextualisation.workdir: path "/tmp" leaves the working directory`}},
		{name: "file content not text", in: map[string]any{"type": "process", "command": []any{"x"}, "files": map[string]any{"a": 1}},
			errs: []string{"contextualisation.files.a: 1 is not a string"}},
		{name: "unknown key", in: map[string]any{"type": "process", "command": []any{"x"}, "user": "root"},
			errs: []string{"contextualisation.user: unknown key for type process (allowed: command, env, files, type, workdir)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeContext(tt.in)
			if len(tt.errs) == 0 {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("DecodeContext = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("DecodeContext(%v) succeeded", tt.in)
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses; fields are counted after the last ')'.
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'S' || st.pgrp != 4242 || st.start != 987654 {
		t.Fatalf("parseStat = %+v, want state S, pgrp 4242, start 987654", st)
	}
	if _, err := parseStat([]byte("1 (x) S 1 2")); err == nil {
		t.Fatalf("short stat line parsed")
	}
	if !(procStat{state: 'Z'}).zombie() || (procStat{state: 'S'}).zombie() {
		t.Fatalf("zombie() wrong")
	}
}
