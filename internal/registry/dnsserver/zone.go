package dnsserver

import (
	"net/netip"
	"strings"

	"github.com/skyfleet/skyfleet/internal/registry/readyset"
)

// DefaultSRVPort is the SRV port of a node whose variables set none of PortKeys.
const DefaultSRVPort = 80

// PortKeys are the node variables read, in this order, for the SRV port.
var PortKeys = []string{"port", "app_port", "applicationport"}

// zone is the lookup index built from one readyset.Set; it is immutable once built.
type zone struct {
	serial uint32
	// infras is keyed by lower-cased id and by lower-cased name.
	infras map[string]*zoneInfra
}

type zoneInfra struct {
	id    string
	nodes map[string]*zoneNode // keyed by lower-cased node name
}

type zoneNode struct {
	port  uint16
	insts []zoneInstance
	byID  map[string]int // lower-cased node id → index into insts
}

type zoneInstance struct {
	id     string // lower-cased, as it appears in SRV targets
	v4, v6 netip.Addr
}

// buildZone indexes set. Ids are entered first so that a name never shadows an id; of
// several infrastructures with the same name, the newest (readyset.Newer) holds it.
func buildZone(set *readyset.Set) *zone {
	z := &zone{serial: uint32(set.Version), infras: make(map[string]*zoneInfra, 2*set.Len())}
	infras := set.Infras()
	ids := make(map[string]bool, len(infras))
	for _, in := range infras {
		key := strings.ToLower(in.ID)
		if !validLabel(key) {
			continue
		}
		ids[key] = true
		z.infras[key] = indexInfra(in)
	}
	owner := map[string]*readyset.Infra{}
	for _, in := range infras {
		key := strings.ToLower(in.Name)
		if !validLabel(key) || ids[key] {
			continue
		}
		if cur, ok := owner[key]; ok && !readyset.Newer(in, cur) {
			continue
		}
		owner[key] = in
	}
	for key, in := range owner {
		z.infras[key] = z.infras[strings.ToLower(in.ID)]
		if z.infras[key] == nil {
			z.infras[key] = indexInfra(in)
		}
	}
	return z
}

func indexInfra(in *readyset.Infra) *zoneInfra {
	zi := &zoneInfra{id: in.ID, nodes: make(map[string]*zoneNode, len(in.Nodes))}
	for name, n := range in.Nodes {
		key := strings.ToLower(name)
		if !validLabel(key) {
			continue
		}
		zn := &zoneNode{port: uint16(n.Port(DefaultSRVPort, PortKeys...)), byID: map[string]int{}}
		for _, inst := range n.Ready {
			zin := zoneInstance{id: strings.ToLower(inst.NodeID)}
			for _, a := range inst.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue // a host name: DNS publishes addresses only
				}
				ip = ip.Unmap()
				switch {
				case ip.Is4() && !zin.v4.IsValid():
					zin.v4 = ip
				case ip.Is6() && !zin.v6.IsValid():
					zin.v6 = ip.WithZone("")
				}
			}
			if (!zin.v4.IsValid() && !zin.v6.IsValid()) || !validLabel(zin.id) {
				continue
			}
			zn.byID[zin.id] = len(zn.insts)
			zn.insts = append(zn.insts, zin)
		}
		zi.nodes[key] = zn
	}
	return zi
}

// validLabel reports whether s can be one label of a name in the zone.
func validLabel(s string) bool {
	return s != "" && len(s) <= 63 && !strings.ContainsAny(s, ". \\")
}
