package demoapp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
)

// MaxObjectSize is the largest object Storage serves: 1 TiB.
const MaxObjectSize int64 = 1 << 40

// DefaultObjectSize is the size of an object requested without ?size=: 1 GiB, the size of
// the file the seed tutorial transfers.
const DefaultObjectSize int64 = 1 << 30

// Object is a deterministic, never-stored byte sequence: the byte at offset o depends only
// on the object's name and o, so any range can be produced on its own, at any time, on any
// storage node, and two objects of the same name agree on their common prefix.
type Object struct {
	seed uint64
	size int64
}

// NewObject returns the object called name with size bytes.
func NewObject(name string, size int64) Object {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return Object{seed: h.Sum64(), size: size}
}

// Size returns the object's length in bytes.
func (o Object) Size() int64 { return o.size }

// word returns the 8 bytes starting at offset 8*i: a splitmix64 output, which is fast and
// has no correlation between neighbouring words.
func (o Object) word(i uint64) uint64 {
	z := o.seed + (i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ReadAt fills p with the object's bytes from off, as io.ReaderAt; it returns io.EOF when
// p reaches past the end.
func (o Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read object at %d: negative offset", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	n := len(p)
	var err error
	if rem := o.size - off; int64(n) > rem {
		n = int(rem)
		err = io.EOF
	}
	o.fill(p[:n], off)
	return n, err
}

// fill writes the bytes at [off, off+len(p)) into p.
func (o Object) fill(p []byte, off int64) {
	var tmp [8]byte
	i := uint64(off) / 8
	// Leading partial word.
	if skip := int(off % 8); skip != 0 {
		binary.LittleEndian.PutUint64(tmp[:], o.word(i))
		c := copy(p, tmp[skip:])
		p = p[c:]
		i++
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, o.word(i))
		p = p[8:]
		i++
	}
	if len(p) > 0 {
		binary.LittleEndian.PutUint64(tmp[:], o.word(i))
		copy(p, tmp[:])
	}
}

// ParseSize reads an object size: a number of bytes with an optional binary suffix K, M, G
// or T (also written Ki/KiB/KB, …; all mean powers of 1024), for example 512M or 1G.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	upper := strings.ToUpper(t)
	for _, suffix := range []string{"IB", "B", "I"} {
		if len(upper) > len(suffix) && strings.HasSuffix(upper, suffix) {
			upper = strings.TrimSuffix(upper, suffix)
			break
		}
	}
	mult := int64(1)
	if upper != "" {
		switch upper[len(upper)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			upper = upper[:len(upper)-1]
		}
	}
	n, err := strconv.ParseInt(upper, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional suffix K, M, G or T (powers of 1024), e.g. 512M", s)
	}
	if n > MaxObjectSize/mult {
		return 0, fmt.Errorf("size %q: above the largest object size, 1T", s)
	}
	return n * mult, nil
}

// byteRange is one satisfiable range of a representation: [start, start+length).
type byteRange struct {
	start, length int64
}

// errUnsatisfiable reports a Range header none of whose ranges overlaps the object.
var errUnsatisfiable = errors.New("range not satisfiable")

// parseRange reads a Range header against an object of size bytes. It returns ok=false
// when the whole object should be sent: no header, a unit other than bytes, a malformed
// header or more than one range (RFC 9110 lets a server ignore Range; this one serves a
// single range only). It returns errUnsatisfiable for a well-formed single range that starts
// at or after the end.
func parseRange(h string, size int64) (r byteRange, ok bool, err error) {
	if h == "" {
		return byteRange{}, false, nil
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return byteRange{}, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return byteRange{}, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		// Suffix range: the last N bytes.
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return byteRange{}, false, nil
		}
		if n == 0 || size == 0 {
			return byteRange{}, false, errUnsatisfiable
		}
		n = min(n, size)
		return byteRange{start: size - n, length: n}, true, nil
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return byteRange{}, false, nil
	}
	end := size - 1
	if last != "" {
		e, err := strconv.ParseInt(last, 10, 64)
		if err != nil || e < start {
			return byteRange{}, false, nil
		}
		end = min(e, size-1)
	}
	if start >= size {
		return byteRange{}, false, errUnsatisfiable
	}
	return byteRange{start: start, length: end - start + 1}, true, nil
}
