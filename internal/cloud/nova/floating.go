package nova

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/auth"
)

// fipState is the floating IP progress of one server.
type fipState struct {
	mu         sync.Mutex
	id         string // allocated floating IP id
	address    string
	associated bool
	attempts   int
	next       time.Time
	lastErr    string
	failed     bool
}

// FloatingIPDescription is the Neutron description skyfleet gives the floating IP of a
// server; Destroy and a restarted orchestrator find the server's floating IPs by it.
func FloatingIPDescription(serverID string) string {
	return "skyfleet floating IP of server " + serverID
}

func (p *Provider) fipState(id string) *fipState {
	p.fipMu.Lock()
	defer p.fipMu.Unlock()
	st := p.fips[id]
	if st == nil {
		st = &fipState{}
		p.fips[id] = st
	}
	return st
}

// forgetFloatingState drops the progress record of a server (Destroy and the next
// attempt find its floating IPs by their description).
func (p *Provider) forgetFloatingState(id string) {
	p.fipMu.Lock()
	defer p.fipMu.Unlock()
	delete(p.fips, id)
}

// backoff is the delay after the n-th failed attempt: FloatingIPBackoff doubled per further
// failure, at most FloatingIPMaxBackoff.
func (p *Provider) backoff(n int) time.Duration {
	d := p.opts.FloatingIPBackoff
	for i := 1; i < n && d < p.opts.FloatingIPMaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.opts.FloatingIPMaxBackoff)
}

// ensureFloatingIP makes one attempt (when one is due) to allocate a floating IP from the
// server's pool and associate it with the server's port. in is the ACTIVE server's
// instance; the result is running with the floating address first, or pending with a
// Detail saying what failed and when the next attempt is, or failed once
// Options.FloatingIPAttempts attempts have failed.
func (p *Provider) ensureFloatingIP(ctx context.Context, srv novaServer, in cloud.Instance) cloud.Instance {
	st := p.fipState(srv.ID)
	if !st.mu.TryLock() {
		in.State = cloud.StatePending
		in.Detail = "floating IP: an attempt is in progress"
		return in
	}
	defer st.mu.Unlock()
	limit := p.opts.FloatingIPAttempts
	switch {
	case st.associated:
		// Nova's address list lags behind Neutron for a while after the association.
		in.Addresses = append([]string{st.address}, in.Addresses...)
		return in
	case st.failed:
		in.State = cloud.StateFailed
		in.Detail = fmt.Sprintf("floating IP: gave up after %d attempts: %s", st.attempts, st.lastErr)
		return in
	}
	now := p.opts.Clock()
	if now.Before(st.next) {
		in.State = cloud.StatePending
		in.Detail = fmt.Sprintf("floating IP: attempt %d of %d failed: %s; next attempt in %s", st.attempts, limit, st.lastErr, st.next.Sub(now).Round(time.Second))
		return in
	}
	st.attempts++
	log := p.log.With("server_id", srv.ID, "node", srv.Metadata[cloud.TagNode], "node_id", srv.Metadata[cloud.TagNodeID])
	if err := p.attachFloatingIP(ctx, srv, st); err != nil {
		st.lastErr = auth.Redact(err.Error(), p.creds)
		log.Warn("floating IP attempt failed", "attempt", st.attempts, "max_attempts", limit, "err", st.lastErr)
		if st.attempts >= limit {
			st.failed = true
			in.State = cloud.StateFailed
			in.Detail = fmt.Sprintf("floating IP: gave up after %d attempts: %s", st.attempts, st.lastErr)
			return in
		}
		st.next = now.Add(p.backoff(st.attempts))
		in.State = cloud.StatePending
		in.Detail = fmt.Sprintf("floating IP: attempt %d of %d failed: %s; next attempt in %s", st.attempts, limit, st.lastErr, p.backoff(st.attempts))
		return in
	}
	st.associated = true
	log.Info("floating IP associated", "floating_ip", st.address, "floating_ip_id", st.id, "attempt", st.attempts)
	in.Addresses = append([]string{st.address}, in.Addresses...)
	return in
}

// attachFloatingIP allocates (or finds, after a restart) the server's floating IP and
// associates it with the server's first port.
func (p *Provider) attachFloatingIP(ctx context.Context, srv novaServer, st *fipState) error {
	net, err := p.network(ctx)
	if err != nil {
		return err
	}
	if st.id == "" {
		mine, err := p.floatingIPsOf(ctx, net, srv.ID)
		if err != nil {
			return err
		}
		if len(mine) > 0 {
			st.id, st.address = mine[0].ID, mine[0].FloatingIP
		} else {
			pool, err := p.poolNetwork(ctx, net, srv.Metadata[MetaFloatingIP])
			if err != nil {
				return err
			}
			fip, err := floatingips.Create(ctx, net, floatingips.CreateOpts{FloatingNetworkID: pool, Description: FloatingIPDescription(srv.ID)}).Extract()
			if err != nil {
				return p.apiError("allocate a floating IP from network "+pool, err)
			}
			st.id, st.address = fip.ID, fip.FloatingIP
			p.log.Info("floating IP allocated", "server_id", srv.ID, "floating_ip", fip.FloatingIP, "floating_ip_id", fip.ID)
		}
	}
	pages, err := ports.List(net, ports.ListOpts{DeviceID: srv.ID}).AllPages(ctx)
	if err != nil {
		return p.apiError("list the ports of server "+srv.ID, err)
	}
	ps, err := ports.ExtractPorts(pages)
	if err != nil {
		return p.apiError("read the ports of server "+srv.ID, err)
	}
	if len(ps) == 0 {
		return fmt.Errorf("server %s has no network port yet", srv.ID)
	}
	port := ps[0].ID
	if _, err := floatingips.Update(ctx, net, st.id, floatingips.UpdateOpts{PortID: &port}).Extract(); err != nil {
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) && strings.Contains(err.Error(), "FloatingIPNotFound") {
			st.id, st.address = "", "" // released behind our back: allocate anew next time
		}
		return p.apiError("associate floating IP "+st.address+" with server "+srv.ID, err)
	}
	return nil
}

// floatingIPsOf lists the floating IPs skyfleet allocated for a server.
func (p *Provider) floatingIPsOf(ctx context.Context, net *gophercloud.ServiceClient, serverID string) ([]floatingips.FloatingIP, error) {
	pages, err := floatingips.List(net, floatingips.ListOpts{Description: FloatingIPDescription(serverID)}).AllPages(ctx)
	if err != nil {
		return nil, p.apiError("list the floating IPs of server "+serverID, err)
	}
	all, err := floatingips.ExtractFloatingIPs(pages)
	if err != nil {
		return nil, p.apiError("read the floating IPs of server "+serverID, err)
	}
	return all, nil
}

// poolNetwork resolves floating_ip_pool (an external network's name or id; empty for the
// first external network) to a network id.
func (p *Provider) poolNetwork(ctx context.Context, net *gophercloud.ServiceClient, pool string) (string, error) {
	yes := true
	pages, err := networks.List(net, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &yes}).AllPages(ctx)
	if err != nil {
		return "", p.apiError("list external networks", err)
	}
	var all []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := networks.ExtractNetworksInto(pages, &all); err != nil {
		return "", p.apiError("read the external networks", err)
	}
	var names []string
	for _, n := range all {
		if pool == "" || n.Name == pool || n.ID == pool {
			return n.ID, nil
		}
		names = append(names, n.Name)
	}
	sort.Strings(names)
	if pool == "" {
		return "", errors.New("the project sees no external network to allocate a floating IP from; set floating_ip_pool")
	}
	return "", fmt.Errorf("resource.floating_ip_pool %q is not an external network of the project (external networks: %v)", pool, names)
}

// releaseFloatingIPs deletes the floating IPs allocated for a server: the one this process
// remembers and every one carrying the server's description.
func (p *Provider) releaseFloatingIPs(ctx context.Context, serverID string) error {
	p.fipMu.Lock()
	st := p.fips[serverID]
	p.fipMu.Unlock()
	remembered := ""
	if st != nil {
		st.mu.Lock()
		remembered = st.id
		st.mu.Unlock()
	}
	net, err := p.network(ctx)
	if err != nil {
		if remembered == "" {
			// A cloud without Neutron in its catalog cannot hold floating IPs of ours.
			p.log.Debug("no network endpoint; no floating IPs to release", "server_id", serverID, "err", err)
			return nil
		}
		return err
	}
	ids := map[string]string{}
	if remembered != "" {
		ids[remembered] = ""
	}
	mine, err := p.floatingIPsOf(ctx, net, serverID)
	if err != nil {
		return err
	}
	for _, f := range mine {
		ids[f.ID] = f.FloatingIP
	}
	for id, addr := range ids {
		if err := floatingips.Delete(ctx, net, id).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return p.apiError("release floating IP "+id+" of server "+serverID, err)
		}
		p.log.Info("floating IP released", "server_id", serverID, "floating_ip_id", id, "floating_ip", addr)
	}
	p.forgetFloatingState(serverID)
	return nil
}
