package demoapp

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestObjectDeterministicAndRandomAccess(t *testing.T) {
	const size = 1<<20 + 13
	a := NewObject("alpha", size)
	whole := make([]byte, size)
	if n, err := a.ReadAt(whole, 0); n != size || err != nil {
		t.Fatalf("ReadAt whole = %d, %v; want %d, nil", n, err, size)
	}
	again := make([]byte, size)
	_, _ = NewObject("alpha", size).ReadAt(again, 0)
	if !bytes.Equal(whole, again) {
		t.Fatal("two reads of the same object differ")
	}
	other := make([]byte, size)
	_, _ = NewObject("beta", size).ReadAt(other, 0)
	if bytes.Equal(whole[:4096], other[:4096]) {
		t.Fatal("objects of different names start with the same bytes")
	}
	// A longer object of the same name has the shorter one as its prefix.
	longer := make([]byte, size)
	_, _ = NewObject("alpha", 4*size).ReadAt(longer, 0)
	if !bytes.Equal(whole, longer) {
		t.Fatal("object of the same name and larger size is not an extension")
	}
	for _, tc := range []struct{ off, n int }{{0, 1}, {1, 7}, {3, 8}, {7, 9}, {8, 16}, {5, 100}, {size - 3, 3}, {12345, 65536}} {
		got := make([]byte, tc.n)
		if _, err := a.ReadAt(got, int64(tc.off)); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d, %d): %v", tc.off, tc.n, err)
		}
		if !bytes.Equal(got, whole[tc.off:tc.off+tc.n]) {
			t.Errorf("ReadAt(off %d, len %d) differs from the same bytes of a whole read", tc.off, tc.n)
		}
	}
	// Bytes look random: every byte value appears, none dominates.
	var counts [256]int
	for _, b := range whole {
		counts[b]++
	}
	for v, c := range counts {
		if c < size/256/2 || c > size/256*2 {
			t.Fatalf("byte %d appears %d times in %d bytes; the content is not uniform", v, c, size)
		}
	}
}

func TestObjectReadAtEnd(t *testing.T) {
	o := NewObject("x", 10)
	p := make([]byte, 8)
	n, err := o.ReadAt(p, 6)
	if n != 4 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt past the end = %d, %v; want 4, EOF", n, err)
	}
	if n, err := o.ReadAt(p, 10); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := o.ReadAt(p, -1); err == nil {
		t.Fatal("ReadAt at a negative offset succeeded")
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"1234", 1234, false},
		{"1K", 1 << 10, false},
		{"1M", 1 << 20, false},
		{"512M", 512 << 20, false},
		{"1G", 1 << 30, false},
		{"4G", 4 << 30, false},
		{"4g", 4 << 30, false},
		{"2GiB", 2 << 30, false},
		{"2GB", 2 << 30, false},
		{"3Mi", 3 << 20, false},
		{"1T", 1 << 40, false},
		{"2T", 0, true},
		{"", 0, true},
		{"G", 0, true},
		{"-1M", 0, true},
		{"1.5G", 0, true},
		{"1X", 0, true},
		{"99999999999999999999", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	const size = 1000
	for _, tc := range []struct {
		name   string
		header string
		want   byteRange
		ok     bool
		unsat  bool
	}{
		{"none", "", byteRange{}, false, false},
		{"first byte", "bytes=0-0", byteRange{0, 1}, true, false},
		{"closed", "bytes=100-199", byteRange{100, 100}, true, false},
		{"open", "bytes=900-", byteRange{900, 100}, true, false},
		{"end past size is clamped", "bytes=990-5000", byteRange{990, 10}, true, false},
		{"last byte", "bytes=999-999", byteRange{999, 1}, true, false},
		{"suffix", "bytes=-10", byteRange{990, 10}, true, false},
		{"suffix longer than object", "bytes=-5000", byteRange{0, 1000}, true, false},
		{"spaces", "bytes= 5 - 9 ", byteRange{5, 5}, true, false},
		{"start at size", "bytes=1000-", byteRange{}, false, true},
		{"start past size", "bytes=2000-3000", byteRange{}, false, true},
		{"zero suffix", "bytes=-0", byteRange{}, false, true},
		{"multiple ranges served whole", "bytes=0-1,5-6", byteRange{}, false, false},
		{"other unit ignored", "items=0-1", byteRange{}, false, false},
		{"end before start ignored", "bytes=9-5", byteRange{}, false, false},
		{"garbage ignored", "bytes=a-b", byteRange{}, false, false},
		{"no dash ignored", "bytes=5", byteRange{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseRange(tc.header, size)
			if tc.unsat != errors.Is(err, errUnsatisfiable) {
				t.Fatalf("parseRange(%q) error = %v, want unsatisfiable %v", tc.header, err, tc.unsat)
			}
			if ok != tc.ok || got != tc.want {
				t.Fatalf("parseRange(%q) = %+v, %v; want %+v, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}
