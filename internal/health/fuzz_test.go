package health

import (
	"encoding/json"
	"testing"
)

// FuzzParseSpec feeds arbitrary health_check sections (as JSON) to ParseSpec: it must never
// panic, and a section it accepts must give a spec the checker can run.
func FuzzParseSpec(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"ping": true, "ports": [50070], "timeout": 600}`,
		`{"type": "basic", "ping": false, "urls": ["http://{{ip}}/"], "interval": "5s"}`,
		`{"mysqldbs": [{"name": "a", "user": "b", "pass": "c"}], "timeout": "10m"}`,
		`{"ports": [0, 65536, -1, 1.5, "x"], "timeout": -3}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var section map[string]any
		if json.Unmarshal(data, &section) != nil {
			return
		}
		s, err := ParseSpec(section)
		if err != nil {
			return
		}
		if s.Timeout <= 0 || s.Interval <= 0 {
			t.Errorf("accepted %s with timeout %v, interval %v", data, s.Timeout, s.Interval)
		}
		for _, p := range s.Ports {
			if p < 1 || p > 65535 {
				t.Errorf("accepted %s with port %d", data, p)
			}
		}
		for _, u := range s.URLs {
			if u == "" {
				t.Errorf("accepted %s with an empty URL", data)
			}
		}
	})
}
