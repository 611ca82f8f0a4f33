package docker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// ensureNetwork makes sure the bridge network name exists. A missing one is created with a
// free subnet from the provider's pool and labelled with the infrastructure id, so that
// Cleanup can remove it once it is empty. An existing network must use the bridge driver:
// only then does each container get an address of its own that the host can reach.
func (p *Provider) ensureNetwork(ctx context.Context, name, infraID string) error {
	p.netMu.Lock()
	defer p.netMu.Unlock()
	for attempt := 0; ; attempt++ {
		n, err := p.cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err == nil {
			if n.Driver != "bridge" {
				return fmt.Errorf("docker network %s uses the %s driver; skyfleet needs a bridge network (leave network out to get one)", name, n.Driver)
			}
			return nil
		}
		if !cerrdefs.IsNotFound(err) {
			return p.apiError("inspect network "+name, err)
		}
		if attempt >= 8 {
			return fmt.Errorf("docker create network %s: gave up after %d attempts (subnets kept clashing)", name, attempt)
		}
		subnet, err := p.freeSubnet(ctx, name)
		if err != nil {
			return err
		}
		labels := map[string]string{cloud.TagManaged: "1"}
		if infraID != "" {
			labels[cloud.TagInfraID] = infraID
		}
		_, err = p.cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet.String()}}},
			Labels: labels,
		})
		switch {
		case err == nil:
			p.log.Info("network created", "network", name, "subnet", subnet.String(), "infra_id", infraID)
			return nil
		case cerrdefs.IsConflict(err), strings.Contains(err.Error(), "already exists"):
			continue // another process made it first: inspect it
		case strings.Contains(strings.ToLower(err.Error()), "overlap"):
			continue // another process took the subnet meanwhile: pick again
		default:
			return p.apiError("create network "+name, err)
		}
	}
}

// freeSubnet picks a subnet of the pool that no existing Docker network overlaps. The search
// starts at a position derived from the network name, so that concurrent skyfleet
// processes creating different networks rarely try the same subnet.
func (p *Provider) freeSubnet(ctx context.Context, name string) (netip.Prefix, error) {
	nets, err := p.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return netip.Prefix{}, p.apiError("list networks", err)
	}
	var used []netip.Prefix
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if pfx, err := netip.ParsePrefix(c.Subnet); err == nil {
				used = append(used, pfx.Masked())
			}
		}
	}
	pool := p.opts.SubnetPool.Masked()
	bits := p.opts.SubnetBits
	if bits < pool.Bits() || bits > 30 || !pool.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("docker subnet pool %s cannot hold /%d networks", pool, bits)
	}
	count := uint32(1) << (bits - pool.Bits())
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	start := h.Sum32() % count
	base := pool.Addr().As4()
	baseN := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	step := uint32(1) << (32 - bits)
	for i := uint32(0); i < count; i++ {
		n := baseN + ((start+i)%count)*step
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), bits)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("docker create network %s: no free /%d left in the subnet pool %s", name, bits, pool)
}

// Cleanup removes the networks skyfleet created for infraID that no container uses any
// more. Call it after destroying an infrastructure's instances; a network still in use (a
// container being created at the same moment) is left alone and removed by a later call.
func (p *Provider) Cleanup(ctx context.Context, infraID string) error {
	if infraID == "" {
		return errors.New("docker cleanup: empty infrastructure id")
	}
	if err := p.ready(ctx); err != nil {
		return err
	}
	p.netMu.Lock()
	defer p.netMu.Unlock()
	nets, err := p.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", cloud.TagManaged+"=1"),
		filters.Arg("label", cloud.TagInfraID+"="+infraID),
	)})
	if err != nil {
		return p.apiError("list networks", err)
	}
	var errs []error
	for _, n := range nets {
		full, err := p.cli.NetworkInspect(ctx, n.ID, network.InspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, p.apiError("inspect network "+n.Name, err))
			continue
		}
		if len(full.Containers) > 0 {
			p.log.Info("network still in use; keeping it", "network", n.Name, "containers", len(full.Containers), "infra_id", infraID)
			continue
		}
		if err := p.cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			if strings.Contains(err.Error(), "active endpoints") {
				continue
			}
			errs = append(errs, p.apiError("remove network "+n.Name, err))
			continue
		}
		p.log.Info("network removed", "network", n.Name, "infra_id", infraID)
	}
	return errors.Join(errs...)
}
