package decode

import (
	"math"
	"testing"
)

func TestTypeName(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{map[string]any{"a": 1}, "mapping"},
		{[]any{1}, "list"},
		{true, "boolean"},
		{1.5, "number"},
		{3, "int"},
		{"x", "string"},
		{map[string]string{}, "map[string]string"},
	}
	for _, tt := range tests {
		if got := TypeName(tt.in); got != tt.want {
			t.Errorf("TypeName(%#v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in       any
		want     float64
		ok       bool
		orString bool // what NumberOrString says
	}{
		{3, 3, true, true},
		{int64(-4), -4, true, true},
		{uint64(5), 5, true, true},
		{0.25, 0.25, true, true},
		{float32(0.5), 0.5, true, true},
		{"0.5", 0, false, true},
		{"lots", 0, false, false},
		{true, 0, false, false},
		{nil, 0, false, false},
		{[]any{1}, 0, false, false},
	}
	for _, tt := range tests {
		got, ok := Number(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("Number(%#v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		got, ok = NumberOrString(tt.in)
		want := tt.want
		if _, isString := tt.in.(string); isString {
			want = 0.5
		}
		if ok != tt.orString || (ok && got != want) {
			t.Errorf("NumberOrString(%#v) = %v, %v; want %v, %v", tt.in, got, ok, want, tt.orString)
		}
	}
}

func TestInteger(t *testing.T) {
	tests := []struct {
		in   any
		want int
		ok   bool
	}{
		{20, 20, true},
		{int64(-3), -3, true},
		{uint64(7), 7, true},
		{40.0, 40, true},
		{float32(2), 2, true},
		{"12", 12, true},
		{1.5, 0, false},
		{" 12", 0, false},
		{"1e3", 0, false},
		{math.Inf(1), 0, false},
		{math.NaN(), 0, false},
		{1e300, 0, false},
		{uint64(math.MaxUint64), 0, false},
		{true, 0, false},
		{nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := Integer(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("Integer(%#v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		in   any
		want bool
		ok   bool
	}{
		{true, true, true},
		{false, false, true},
		{"true", true, true},
		{"False", false, true},
		{"1", true, true},
		{"yes", false, false},
		{"maybe", false, false},
		{1, false, false},
		{nil, false, false},
	}
	for _, tt := range tests {
		got, ok := Bool(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Bool(%#v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
