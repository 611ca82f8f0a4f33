package sim

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud/decode"
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
	p := decode.NewProblems("resource")
	for k, v := range p.Walk(m, nil) {
		switch k {
		case "type":
			if s, ok := v.(string); !ok || s != "sim" {
				p.Bad(k, "%v is not sim", v)
			}
		case "name":
			r.Name = p.String(k, v)
		case "boot_time":
			r.BootTime = decodeDuration(p, k, v)
		case "latency":
			r.Latency = decodeDuration(p, k, v)
		case "failure_rate":
			r.FailureRate = decodeRate(p, k, v)
		case "api_error_rate":
			r.APIErrorRate = decodeRate(p, k, v)
		case "lose_response_rate":
			r.LoseResponseRate = decodeRate(p, k, v)
		case "address_range":
			r.AddressRange = p.Parse(k, v, "an IPv4 CIDR such as 127.77.0.0/16", checkRange)
		default:
			p.Bad(k, "unknown key for type sim (allowed: %s)", strings.Join(resourceKeys, ", "))
		}
	}
	if err := p.Err(); err != nil {
		return Resource{}, fmt.Errorf("decode sim resource: %w", err)
	}
	return r, nil
}

// decodeDuration reads a duration such as "2s", or a number of seconds; a bad one is
// reported to p and read as nil.
func decodeDuration(p *decode.Problems, key string, v any) *time.Duration {
	var d time.Duration
	switch x := v.(type) {
	case string:
		parsed, err := time.ParseDuration(x)
		if err != nil {
			p.Bad(key, "%q is not a duration (want e.g. \"2s\" or \"500ms\")", x)
			return nil
		}
		d = parsed
	case time.Duration:
		d = x
	default:
		f, ok := decode.Number(v)
		if !ok {
			p.Bad(key, "%v is not a duration (want e.g. \"2s\" or a number of seconds)", v)
			return nil
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		p.Bad(key, "%v is negative (want 0 or more)", v)
		return nil
	}
	return &d
}

// decodeRate reads a probability from 0 to 1; a bad one is reported to p and read as nil.
func decodeRate(p *decode.Problems, key string, v any) *float64 {
	f, ok := decode.Number(v)
	if !ok || math.IsNaN(f) || f < 0 || f > 1 {
		p.Bad(key, "%v is not a probability (want a number from 0 to 1)", v)
		return nil
	}
	return &f
}

// checkRange accepts an address range newAddrPool can draw from.
func checkRange(s string) error {
	_, err := newAddrPool(s)
	return err
}
