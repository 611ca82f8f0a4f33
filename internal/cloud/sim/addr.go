package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// errRangeExhausted is returned when every usable address of a range is in use.
var errRangeExhausted = errors.New("address range exhausted")

// addrPool hands out IPv4 addresses of one prefix sequentially, skipping the network and
// broadcast addresses, and reuses a released address only after the cursor wraps around, so
// that a replacement instance rarely gets the address its predecessor had a moment ago.
// It is not safe for concurrent use; the Sim's mutex guards it.
type addrPool struct {
	prefix netip.Prefix
	first  uint32 // first usable address
	size   uint32 // number of usable addresses
	next   uint32 // offset of the next candidate
	used   map[uint32]struct{}
}

func newAddrPool(cidr string) (*addrPool, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("address range %q: %w", cidr, err)
	}
	if !p.Addr().Is4() {
		return nil, fmt.Errorf("address range %q: only IPv4 ranges are supported", cidr)
	}
	p = p.Masked()
	bits := 32 - p.Bits()
	if bits < 2 {
		return nil, fmt.Errorf("address range %q: too small (need a prefix of /30 or wider)", cidr)
	}
	base := binary.BigEndian.Uint32(p.Addr().AsSlice())
	total := uint64(1) << bits
	return &addrPool{
		prefix: p,
		first:  base + 1,
		size:   uint32(total - 2),
		used:   map[uint32]struct{}{},
	}, nil
}

func (a *addrPool) allocate() (string, error) {
	for i := uint32(0); i < a.size; i++ {
		off := (a.next + i) % a.size
		if _, taken := a.used[off]; taken {
			continue
		}
		a.used[off] = struct{}{}
		a.next = (off + 1) % a.size
		return a.addr(off).String(), nil
	}
	return "", fmt.Errorf("allocate address from %s: %w", a.prefix, errRangeExhausted)
}

func (a *addrPool) release(s string) {
	ip, err := netip.ParseAddr(s)
	if err != nil || !a.prefix.Contains(ip) {
		return
	}
	v := binary.BigEndian.Uint32(ip.AsSlice())
	delete(a.used, v-a.first)
}

func (a *addrPool) addr(off uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a.first+off)
	return netip.AddrFrom4(b)
}
