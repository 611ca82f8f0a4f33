package health

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name    string
		section map[string]any
		want    Spec
	}{
		{"no section", nil, Spec{Ping: true, Timeout: 600 * time.Second, Interval: 10 * time.Second}},
		{"empty section", map[string]any{}, Spec{Ping: true, Timeout: 600 * time.Second, Interval: 10 * time.Second}},
		{
			"occopus example",
			map[string]any{"ping": true, "ports": []any{50070}, "timeout": 600},
			Spec{Ping: true, Ports: []int{50070}, Timeout: 600 * time.Second, Interval: 10 * time.Second},
		},
		{
			"everything",
			map[string]any{
				"type": "basic", "ping": false, "ports": []any{80, int64(443), float64(8080)},
				"urls":     []any{"http://{{ip}}/wordpress"},
				"mysqldbs": []any{map[string]any{"name": "wp", "user": "wp", "pass": "s3cret"}},
				"timeout":  "90s", "interval": 5,
			},
			Spec{
				Ports: []int{80, 443, 8080}, URLs: []string{"http://{{ip}}/wordpress"},
				MySQLDBs: []MySQLDB{{Name: "wp", User: "wp", Pass: "s3cret"}},
				Timeout:  90 * time.Second, Interval: 5 * time.Second,
			},
		},
		{"timeout as numeric string", map[string]any{"timeout": "120"}, Spec{Ping: true, Timeout: 120 * time.Second, Interval: 10 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSpec(tc.section)
			if err != nil {
				t.Fatalf("ParseSpec: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseSpec =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	section := map[string]any{
		"type":     "chef",
		"ping":     "yes",
		"ports":    []any{80, "http", 70000, 1.5},
		"urls":     "http://x/",
		"mysqldbs": []any{map[string]any{"name": "wp", "pass": []any{"hunter2"}, "host": "x"}, "db"},
		"timeout":  0,
		"interval": "soon",
		"retries":  3,
	}
	_, err := ParseSpec(section)
	if err == nil {
		t.Fatal("ParseSpec accepted a bad section")
	}
	want := []string{
		`health_check.interval: "soon" is not a duration; want a number of seconds or a duration such as "90s" or "10m"`,
		`health_check.mysqldbs[0].host: unknown key; allowed keys: name, user, pass`,
		`health_check.mysqldbs[0].pass: is not a string`,
		`health_check.mysqldbs[0]: missing required key "user"`,
		`health_check.mysqldbs[1]: is not a mapping; want {name, user, pass}`,
		`health_check.ping: "yes" is not a boolean; want true or false`,
		`health_check.ports[1]: "http" is not a port number; want an integer 1..65535`,
		`health_check.ports[2]: 70000 is not a port number; want an integer 1..65535`,
		`health_check.ports[3]: 1.5 is not a port number; want an integer 1..65535`,
		`health_check.retries: unknown key; allowed keys: type, ping, ports, urls, mysqldbs, timeout, interval`,
		`health_check.timeout: 0 must be longer than 0`,
		`health_check.type: "chef" is not a health check type; allowed: basic`,
		`health_check.urls: "http://x/" is not a list; want a list of URLs`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("an error message shows the password")
	}
}

func TestSecretIsRedacted(t *testing.T) {
	db := MySQLDB{Name: "wp", User: "u", Pass: "hunter2"}
	js, _ := json.Marshal(db)
	for _, s := range []string{fmt.Sprint(db), fmt.Sprintf("%+v", db), fmt.Sprintf("%#v", db), fmt.Sprint(db.Pass), string(js)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password printed: %s", s)
		}
	}
	if string(db.Pass) != "hunter2" {
		t.Error("the value itself must stay usable")
	}
}
