package decode

import (
	"fmt"
	"math"
	"strconv"
)

// TypeName names the type of a decoded YAML or JSON value as a user reads it in an error
// message: null, mapping, list, boolean, number; any other type by its Go name (int for a
// whole number, string for a string).
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	case bool:
		return "boolean"
	case float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// Number reads one of the numeric types YAML and JSON decoders produce. A string is not a
// number here, so that a field which also takes text (a duration such as "2s", a size such
// as "256Mi") can tell the two apart; use NumberOrString for a field that is only ever a
// number.
func Number(v any) (float64, bool) {
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

// NumberOrString is Number that also reads a string holding a number, such as "0.5", as a
// template renders it.
func NumberOrString(v any) (float64, bool) {
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	return Number(v)
}

// Integer reads a whole number: any numeric type without a fraction that fits an int, or a
// string holding a decimal integer, such as "20".
func Integer(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), x >= math.MinInt && x <= math.MaxInt
	case uint64:
		return int(x), x <= math.MaxInt
	case float64:
		return wholeFloat(x)
	case float32:
		return wholeFloat(float64(x))
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

// wholeFloat converts f when it is a whole number within the range of an int.
func wholeFloat(f float64) (int, bool) {
	// -2^63 is exact as a float64; 2^63 is the first value above MaxInt on 64-bit machines.
	if f != math.Trunc(f) || f < math.MinInt || f >= -float64(math.MinInt) {
		return 0, false
	}
	return int(f), true
}

// Bool reads a boolean, or a string strconv.ParseBool accepts: 1, t, T, TRUE, true, True,
// and 0, f, F, FALSE, false, False.
func Bool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(x)
		return b, err == nil
	}
	return false, false
}
