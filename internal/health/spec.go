package health

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of a health_check section, as Occopus' basic health checker has them (Interval is
// skyfleet's: Occopus re-checks once per maintenance pass, every 10 s).
const (
	DefaultTimeout  = 600 * time.Second
	DefaultInterval = 10 * time.Second
	// MySQLPort is the port a mysqldbs check connects to.
	MySQLPort = 3306
)

// specKeys are the keys a health_check section may have.
var specKeys = []string{"type", "ping", "ports", "urls", "mysqldbs", "timeout", "interval"}

// Spec is one node definition's health check: what to check and how long an instance may
// fail before it is declared failed.
type Spec struct {
	// Ping sends one ICMP echo to the address (default true).
	Ping bool
	// Ports are TCP ports that must accept a connection.
	Ports []int
	// URLs must answer a HEAD (or GET) with a 2xx status. ParseSpec keeps them as written; the
	// caller renders their templates ({{ip}}, …) per instance before Check.
	URLs []string
	// MySQLDBs must answer on MySQLPort with a MySQL server greeting (see MySQLDB).
	MySQLDBs []MySQLDB
	// Timeout is how long an instance may fail continuously before it is failed (default
	// 600 s).
	Timeout time.Duration
	// Interval is how often an instance is checked (default 10 s).
	Interval time.Duration
}

// MySQLDB is one entry of a mysqldbs list. Name, User and Pass are kept (and, like URLs,
// rendered by the caller) but a check only verifies that a MySQL server greets on
// MySQLPort: skyfleet carries no MySQL client, so it does not log in.
type MySQLDB struct {
	Name string
	User string
	Pass Secret
}

// Secret is a string that prints as "***" so a password never reaches a log or a message.
type Secret string

// String redacts the secret.
func (Secret) String() string { return "***" }

// GoString redacts the secret in %#v.
func (Secret) GoString() string { return `"***"` }

// MarshalText redacts the secret when encoded as JSON, YAML or text.
func (Secret) MarshalText() ([]byte, error) { return []byte("***"), nil }

// DefaultSpec is the check of a node definition without a health_check section: ping only,
// 600 s timeout.
func DefaultSpec() Spec {
	return Spec{Ping: true, Timeout: DefaultTimeout, Interval: DefaultInterval}
}

// ParseSpec reads a node definition's health_check section (nil: none, which gives
// DefaultSpec). It reports every problem at once, each naming the key path, the bad value
// and what is allowed. The descriptor package validates the same keys with file positions;
// ParseSpec re-checks so that a record read back from the store cannot smuggle in bad values.
func ParseSpec(section map[string]any) (Spec, error) {
	s := DefaultSpec()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("health_check.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	keys := make([]string, 0, len(section))
	for k := range section {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := section[k]
		switch k {
		case "type":
			if t, ok := v.(string); !ok || t != "basic" {
				bad(k, "%s is not a health check type; allowed: basic", show(v))
			}
		case "ping":
			b, ok := v.(bool)
			if !ok {
				bad(k, "%s is not a boolean; want true or false", show(v))
			}
			s.Ping = b
		case "ports":
			s.Ports = nil
			items, ok := v.([]any)
			if !ok {
				bad(k, "%s is not a list; want a list of port numbers (1..65535)", show(v))
				break
			}
			for i, it := range items {
				p, ok := asInt(it)
				if !ok || p < 1 || p > 65535 {
					bad(fmt.Sprintf("%s[%d]", k, i), "%s is not a port number; want an integer 1..65535", show(it))
					continue
				}
				s.Ports = append(s.Ports, int(p))
			}
		case "urls":
			s.URLs = nil
			items, ok := v.([]any)
			if !ok {
				bad(k, "%s is not a list; want a list of URLs", show(v))
				break
			}
			for i, it := range items {
				u, ok := it.(string)
				if !ok || strings.TrimSpace(u) == "" {
					bad(fmt.Sprintf("%s[%d]", k, i), "%s is not a URL; want a non-empty string such as \"http://{{ip}}/\"", show(it))
					continue
				}
				s.URLs = append(s.URLs, u)
			}
		case "mysqldbs":
			s.MySQLDBs = nil
			items, ok := v.([]any)
			if !ok {
				bad(k, "%s is not a list; want a list of {name, user, pass} mappings", show(v))
				break
			}
			for i, it := range items {
				db, dbErrs := parseMySQLDB(fmt.Sprintf("%s[%d]", k, i), it)
				errs = append(errs, dbErrs...)
				if len(dbErrs) == 0 {
					s.MySQLDBs = append(s.MySQLDBs, db)
				}
			}
		case "timeout", "interval":
			d, err := parseDuration(v)
			if err == nil && d <= 0 {
				err = fmt.Errorf("%s must be longer than 0", show(v))
			}
			if err != nil {
				bad(k, "%v", err)
				break
			}
			if k == "timeout" {
				s.Timeout = d
			} else {
				s.Interval = d
			}
		default:
			bad(k, "unknown key; allowed keys: %s", strings.Join(specKeys, ", "))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Spec{}, err
	}
	return s, nil
}

func parseMySQLDB(path string, v any) (MySQLDB, []error) {
	m, ok := v.(map[string]any)
	if !ok {
		return MySQLDB{}, []error{fmt.Errorf("health_check.%s: is not a mapping; want {name, user, pass}", path)}
	}
	var (
		db   MySQLDB
		errs []error
	)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var s string
		switch x := m[k].(type) {
		case string:
			s = x
		case int, int64, uint64, float64, bool:
			s = fmt.Sprint(x)
		default:
			// Never echo the value: it may be the password.
			errs = append(errs, fmt.Errorf("health_check.%s.%s: is not a string", path, k))
			continue
		}
		switch k {
		case "name":
			db.Name = s
		case "user":
			db.User = s
		case "pass":
			db.Pass = Secret(s)
		default:
			errs = append(errs, fmt.Errorf("health_check.%s.%s: unknown key; allowed keys: name, user, pass", path, k))
		}
	}
	for _, k := range []string{"name", "user", "pass"} {
		if _, ok := m[k]; !ok {
			errs = append(errs, fmt.Errorf("health_check.%s: missing required key %q", path, k))
		}
	}
	return db, errs
}

// asInt accepts the integer forms plain data (YAML, JSON) gives.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// parseDuration reads a number of seconds (Occopus' form) or a Go duration string ("90s",
// "10m").
func parseDuration(v any) (time.Duration, error) {
	if n, ok := asInt(v); ok {
		if n < 0 || n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("%d is out of range; want a number of seconds > 0", n)
		}
		return time.Duration(n) * time.Second, nil
	}
	if s, ok := v.(string); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return parseDuration(n)
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration; want a number of seconds or a duration such as \"90s\" or \"10m\"", s)
		}
		return d, nil
	}
	return 0, fmt.Errorf("%s is not a duration; want a number of seconds or a duration such as \"90s\"", show(v))
}

// show prints a value for a message, strings quoted.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprint(v)
}
