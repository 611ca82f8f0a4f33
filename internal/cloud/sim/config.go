package sim

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Resource is the typed resource section of a `type: sim` implementation. Every field is an
// optional override of the Sim's Options for the instances created through that section;
// nil or empty means "use the Sim's default".
type Resource struct {
	// Name is an optional label; sim ignores it (accepted because Occopus sections carry it).
	Name string
	// BootTime (`boot_time`, a duration such as "2s" or a number of seconds) is how long an
	// instance stays pending.
	BootTime *time.Duration
	// FailureRate (`failure_rate`, 0..1) is the probability that an instance ends up failed
	// instead of running once booted.
	FailureRate *float64
	// APIErrorRate (`api_error_rate`, 0..1) is the probability that a call returns a
	// cloud.RetryableError without doing anything.
	APIErrorRate *float64
	// LoseResponseRate (`lose_response_rate`, 0..1) is the probability that a Create takes
	// effect but answers with a cloud.RetryableError, as when a response is lost in transit.
	LoseResponseRate *float64
	// Latency (`latency`, a duration) is added to every call, honouring the call's context.
	Latency *time.Duration
	// AddressRange (`address_range`, an IPv4 CIDR) is where instance addresses come from.
	AddressRange string
}

// resourceKeys lists the keys a sim resource section may carry.
var resourceKeys = []string{
	"address_range", "api_error_rate", "boot_time", "failure_rate", "latency",
	"lose_response_rate", "name", "type",
}

// DecodeResource decodes a rendered `type: sim` resource section strictly: an unknown key or
// a value of the wrong type or range is an error naming the key, the bad value and what is
// allowed. All problems are reported at once, joined.
func DecodeResource(m map[string]any) (Resource, error) {
	var r Resource
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		var err error
		switch k {
		case "type":
			if s, ok := v.(string); !ok || s != "sim" {
				err = fmt.Errorf("resource.type: %v is not sim", v)
			}
		case "name":
			s, ok := v.(string)
			if !ok {
				err = fmt.Errorf("resource.name: %v is not a string", v)
			}
			r.Name = s
		case "boot_time":
			r.BootTime, err = decodeDuration(k, v)
		case "latency":
			r.Latency, err = decodeDuration(k, v)
		case "failure_rate":
			r.FailureRate, err = decodeRate(k, v)
		case "api_error_rate":
			r.APIErrorRate, err = decodeRate(k, v)
		case "lose_response_rate":
			r.LoseResponseRate, err = decodeRate(k, v)
		case "address_range":
			s, ok := v.(string)
			if !ok {
				err = fmt.Errorf("resource.address_range: %v is not a string (want an IPv4 CIDR such as 127.77.0.0/16)", v)
				break
			}
			if _, perr := newAddrPool(s); perr != nil {
				err = fmt.Errorf("resource.address_range: %w", perr)
				break
			}
			r.AddressRange = s
		default:
			err = fmt.Errorf("resource.%s: unknown key for type sim (allowed: %s)", k, strings.Join(resourceKeys, ", "))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Resource{}, fmt.Errorf("decode sim resource: %w", errors.Join(errs...))
	}
	return r, nil
}

func decodeDuration(key string, v any) (*time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return nil, fmt.Errorf("resource.%s: %q is not a duration (want e.g. \"2s\" or \"500ms\")", key, x)
		}
		d = p
	case time.Duration:
		d = x
	default:
		f, ok := number(v)
		if !ok {
			return nil, fmt.Errorf("resource.%s: %v is not a duration (want e.g. \"2s\" or a number of seconds)", key, v)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		return nil, fmt.Errorf("resource.%s: %v is negative (want 0 or more)", key, v)
	}
	return &d, nil
}

func decodeRate(key string, v any) (*float64, error) {
	f, ok := number(v)
	if !ok || math.IsNaN(f) || f < 0 || f > 1 {
		return nil, fmt.Errorf("resource.%s: %v is not a probability (want a number from 0 to 1)", key, v)
	}
	return &f, nil
}

// number converts the numeric types a YAML or JSON decoder produces.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}
