package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// errRangeExhausted is returned when every usable address of a range is in use.
var errRangeExhausted = errors.New("address range exhausted")

var (
	loopbackNet  = netip.MustParsePrefix("127.0.0.0/8")
	loopbackHost = netip.MustParseAddr("127.0.0.1")
)

// addrPool walks one loopback range with a cursor, so that an address released by a
// destroyed instance is handed out again only after the rest of the range. Which addresses
// are taken is decided by the caller (the set is shared by every range).
type addrPool struct {
	prefix netip.Prefix
	first  uint32
	size   uint32
	next   uint32
}

// parseRange checks that cidr is an IPv4 range inside 127.0.0.0/8 with room for at least
// one address besides 127.0.0.1.
func parseRange(cidr string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range (want e.g. 127.42.0.0/16)", cidr)
	}
	p = p.Masked()
	if !p.Addr().Is4() || !loopbackNet.Contains(p.Addr()) || p.Bits() < loopbackNet.Bits() {
		return netip.Prefix{}, fmt.Errorf("%q is not inside the loopback range 127.0.0.0/8", cidr)
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%q is too small (want /30 or wider)", cidr)
	}
	if p.Bits() == 30 && p.Contains(loopbackHost) {
		return netip.Prefix{}, fmt.Errorf("%q has no usable address besides 127.0.0.1", cidr)
	}
	return p, nil
}

func newAddrPool(p netip.Prefix) *addrPool {
	base := binary.BigEndian.Uint32(p.Addr().AsSlice())
	total := uint64(1) << (32 - p.Bits())
	return &addrPool{prefix: p, first: base + 1, size: uint32(total - 2)}
}

// allocate returns the next address that is not 127.0.0.1 and not taken.
func (a *addrPool) allocate(taken func(string) bool) (string, error) {
	for i := uint32(0); i < a.size; i++ {
		off := (a.next + i) % a.size
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], a.first+off)
		ip := netip.AddrFrom4(b)
		if ip == loopbackHost || taken(ip.String()) {
			continue
		}
		a.next = (off + 1) % a.size
		return ip.String(), nil
	}
	return "", fmt.Errorf("allocate address from %s: %w", a.prefix, errRangeExhausted)
}
