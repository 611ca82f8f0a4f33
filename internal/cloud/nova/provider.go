package nova

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"golang.org/x/sync/singleflight"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/auth"
	"github.com/skyfleet/skyfleet/internal/cloud/cloudinit"
	"github.com/skyfleet/skyfleet/internal/cloud/decode"
)

// MetaFloatingIP is the server metadata key that asks for a floating IP; its value is the
// pool (external network name or id), empty for the first external network. Keeping the
// request on the server itself lets a restarted orchestrator finish the association.
const MetaFloatingIP = "skyfleet-floating-ip"

// Provider creates, describes and deletes servers in one project of one OpenStack cloud.
// It is safe for concurrent use.
type Provider struct {
	res   Resource // the section the provider was bound from (endpoint, project, region)
	ao    gophercloud.AuthOptions
	creds *cloud.Credentials
	opts  Options
	log   *slog.Logger

	connMu sync.Mutex
	conn   *clients

	flavorMu sync.Mutex
	flavors  map[string]string // name → id

	creates singleflight.Group // one create per token at a time

	fipMu sync.Mutex
	fips  map[string]*fipState // server id → floating IP progress
}

var (
	_ cloud.Provider = (*Provider)(nil)
	_ cloud.Lister   = (*Provider)(nil)
)

func newProvider(r Resource, ao gophercloud.AuthOptions, creds *cloud.Credentials, opts Options) *Provider {
	return &Provider{
		res: r, ao: ao, creds: creds, opts: opts,
		log:     opts.Logger.With("component", "nova", "endpoint", r.IdentityEndpoint, "project_id", r.ProjectID),
		flavors: map[string]string{},
		fips:    map[string]*fipState{},
	}
}

// String describes the provider without credentials.
func (p *Provider) String() string {
	return "nova " + p.res.IdentityEndpoint + " (project " + p.res.ProjectID + ")"
}

// novaServer is the part of a Nova server the provider reads.
type novaServer struct {
	ID        string                   `json:"id"`
	Name      string                   `json:"name"`
	Status    string                   `json:"status"`
	Created   time.Time                `json:"created"`
	Addresses map[string][]novaAddress `json:"addresses"`
	Metadata  map[string]string        `json:"metadata"`
	Fault     struct {
		Message string `json:"message"`
	} `json:"fault"`
}

type novaAddress struct {
	Addr    string `json:"addr"`
	Version int    `json:"version"`
	Type    string `json:"OS-EXT-IPS:type"`
}

// Create creates a server for spec. It is idempotent on spec.Token: servers carry the token
// in their metadata (skyfleet-node-id), and one with the token is looked up first and
// returned — also after a create whose response was lost, which is looked up again at once.
// The user data is spec.UserData, checked against Nova's limit. volume_size > 0 boots from
// a new volume made from the image, deleted with the server unless volume_persist.
func (p *Provider) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	if spec.Token == "" {
		return "", errors.New("nova create: empty idempotency token")
	}
	res, _, err := DecodeResource(spec.Resource)
	if err != nil {
		return "", fmt.Errorf("nova create %s: %w", spec.Node, err)
	}
	if err := cloudinit.Check(spec.UserData, cloudinit.NovaLimit); err != nil {
		return "", fmt.Errorf("nova create %s: %w", spec.Node, err)
	}
	v, err, _ := p.creates.Do(spec.Token, func() (any, error) { return p.create(ctx, spec, res) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (p *Provider) create(ctx context.Context, spec cloud.InstanceSpec, res Resource) (string, error) {
	log := p.log.With("infra_id", spec.InfraID, "node", spec.Node, "node_id", spec.Token)
	c, err := p.connect(ctx)
	if err != nil {
		return "", err
	}
	if id, found, err := p.findByToken(ctx, c, spec.Token); err != nil {
		return "", err
	} else if found {
		log.Info("server for this node id exists; adopting it", "server_id", id)
		return id, nil
	}
	flavorID, err := p.flavorID(ctx, c, res.FlavorName)
	if err != nil {
		return "", err
	}
	name := res.ServerName
	if name == "" {
		name = DefaultName(spec.InfraName, spec.InfraID, spec.Node, spec.Token)
	}
	md := metadata(spec, res)
	for k, v := range md {
		if len(k) > 255 || len(v) > 255 {
			return "", fmt.Errorf("nova create %s: tag %q: Nova metadata keys and values are limited to 255 bytes", spec.Node, decode.Truncate(k, 40))
		}
	}
	opts := servers.CreateOpts{
		Name:           name,
		ImageRef:       res.ImageID,
		FlavorRef:      flavorID,
		SecurityGroups: res.SecurityGroups,
		Metadata:       md,
	}
	if spec.UserData != "" {
		// Encoded here: gophercloud passes text that already decodes as base64 unchanged.
		opts.UserData = []byte(base64.StdEncoding.EncodeToString([]byte(spec.UserData)))
	}
	if res.NetworkID != "" {
		opts.Networks = []servers.Network{{UUID: res.NetworkID}}
	}
	if res.VolumeSize > 0 {
		opts.ImageRef = ""
		opts.BlockDevice = []servers.BlockDevice{{
			SourceType:          servers.SourceImage,
			UUID:                res.ImageID,
			BootIndex:           0,
			DestinationType:     servers.DestinationVolume,
			VolumeSize:          res.VolumeSize,
			DeleteOnTermination: !res.VolumePersist,
		}}
	}
	var builder servers.CreateOptsBuilder = opts
	if res.KeyName != "" {
		builder = keypairs.CreateOptsExt{CreateOptsBuilder: opts, KeyName: res.KeyName}
	}
	srv, err := servers.Create(ctx, c.compute, builder, nil).Extract()
	if err != nil {
		if transient(err) {
			// The answer may have been lost after Nova accepted the request.
			if id, found, ferr := p.findByToken(ctx, c, spec.Token); ferr == nil && found {
				log.Info("server create answer was lost; found the server by its node id", "server_id", id)
				return id, nil
			}
		}
		return "", p.apiError("create server "+name+" for node "+spec.Node, err)
	}
	log.Info("server created", "server_id", srv.ID, "server_name", name, "image_id", res.ImageID, "flavor", res.FlavorName, "floating_ip", res.FloatingIP)
	return srv.ID, nil
}

// metadata is spec.Tags plus skyfleet's facts (which win) and the floating IP request.
func metadata(spec cloud.InstanceSpec, res Resource) map[string]string {
	md := map[string]string{}
	for k, v := range spec.Tags {
		md[k] = v
	}
	md[cloud.TagManaged] = "1"
	md[cloud.TagNodeID] = spec.Token
	if spec.InfraID != "" {
		md[cloud.TagInfraID] = spec.InfraID
	}
	if spec.Node != "" {
		md[cloud.TagNode] = spec.Node
	}
	if spec.InfraName != "" {
		md[cloud.TagInfraName] = spec.InfraName
	}
	if res.FloatingIP {
		md[MetaFloatingIP] = res.FloatingIPPool
	}
	return md
}

// listAll returns every server of the project that is not deleted.
func (p *Provider) listAll(ctx context.Context, c *clients) ([]novaServer, error) {
	pages, err := servers.List(c.compute, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, p.apiError("list servers", err)
	}
	var all []novaServer
	if err := servers.ExtractServersInto(pages, &all); err != nil {
		return nil, p.apiError("read the server list", err)
	}
	out := all[:0]
	for _, s := range all {
		if s.Status != "DELETED" && s.Status != "SOFT_DELETED" {
			out = append(out, s)
		}
	}
	return out, nil
}

// findByToken looks a server up by its node-id metadata; the oldest wins if there are two.
func (p *Provider) findByToken(ctx context.Context, c *clients, token string) (string, bool, error) {
	all, err := p.listAll(ctx, c)
	if err != nil {
		return "", false, err
	}
	var found []novaServer
	for _, s := range all {
		if s.Metadata[cloud.TagNodeID] == token {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		return "", false, nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Created.Before(found[j].Created) })
	return found[0].ID, true, nil
}

// flavorID resolves a flavor name, caching the answer.
func (p *Provider) flavorID(ctx context.Context, c *clients, name string) (string, error) {
	p.flavorMu.Lock()
	defer p.flavorMu.Unlock()
	if id, ok := p.flavors[name]; ok {
		return id, nil
	}
	pages, err := flavors.ListDetail(c.compute, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return "", p.apiError("list flavors", err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return "", p.apiError("read the flavor list", err)
	}
	var names []string
	for _, f := range all {
		p.flavors[f.Name] = f.ID
		names = append(names, f.Name)
	}
	if id, ok := p.flavors[name]; ok {
		return id, nil
	}
	sort.Strings(names)
	return "", fmt.Errorf("nova: resource.flavor_name %q is not a flavor of project %s (flavors: %v)", name, p.res.ProjectID, names)
}

// stateMap is Occopus' mapping of Nova statuses (BUILD, REBUILD, RESIZE, VERIFY_RESIZE,
// MIGRATING → pending; ACTIVE → ready; ERROR → failed; DELETED → shutdown) plus what
// Occopus leaves unmapped: SOFT_DELETED is gone, SHUTOFF and the other stopped forms are
// stopped, and transitions of a live server (reboots, a resize being reverted, a password
// change) are pending.
var stateMap = map[string]cloud.State{
	"BUILD": cloud.StatePending, "REBUILD": cloud.StatePending, "RESIZE": cloud.StatePending,
	"VERIFY_RESIZE": cloud.StatePending, "MIGRATING": cloud.StatePending, "REVERT_RESIZE": cloud.StatePending,
	"REBOOT": cloud.StatePending, "HARD_REBOOT": cloud.StatePending, "PASSWORD": cloud.StatePending,
	"ACTIVE":  cloud.StateRunning,
	"ERROR":   cloud.StateFailed,
	"DELETED": cloud.StateGone, "SOFT_DELETED": cloud.StateGone,
	"SHUTOFF": cloud.StateStopped, "SUSPENDED": cloud.StateStopped, "PAUSED": cloud.StateStopped,
	"SHELVED": cloud.StateStopped, "SHELVED_OFFLOADED": cloud.StateStopped,
}

// toInstance maps a server; an unknown status is an error, as in Occopus (the pass acts
// on nothing and asks again later).
func toInstance(s novaServer) (cloud.Instance, error) {
	state, ok := stateMap[s.Status]
	if !ok {
		return cloud.Instance{}, fmt.Errorf("nova describe %s: unknown server status %q", s.ID, s.Status)
	}
	in := cloud.Instance{ID: s.ID, State: state, Created: s.Created, Tags: map[string]string{}}
	for k, v := range s.Metadata {
		in.Tags[k] = v
	}
	in.Token = s.Metadata[cloud.TagNodeID]
	in.Addresses, in.PrivateAddress = addresses(s.Addresses)
	switch state {
	case cloud.StateFailed:
		in.Detail = "ERROR"
		if s.Fault.Message != "" {
			in.Detail = "ERROR: " + s.Fault.Message
		}
	case cloud.StateStopped, cloud.StateGone:
		in.Detail = s.Status
	}
	return in, nil
}

// addresses orders a server's addresses floating first, then fixed, IPv4 before IPv6
// within each, networks by name; the first is Occopus' address ("first floating, else
// first address") and the first fixed one is the private address.
func addresses(byNet map[string][]novaAddress) (all []string, private string) {
	nets := make([]string, 0, len(byNet))
	for n := range byNet {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	var buckets [4][]string // floating v4, floating v6, fixed v4, fixed v6
	for _, n := range nets {
		for _, a := range byNet[n] {
			if a.Addr == "" {
				continue
			}
			i := 2
			if a.Type == "floating" {
				i = 0
			}
			if a.Version == 6 {
				i++
			}
			buckets[i] = append(buckets[i], a.Addr)
		}
	}
	seen := map[string]bool{}
	for _, b := range buckets {
		for _, a := range b {
			if !seen[a] {
				seen[a] = true
				all = append(all, a)
			}
		}
	}
	switch {
	case len(buckets[2]) > 0:
		private = buckets[2][0]
	case len(buckets[3]) > 0:
		private = buckets[3][0]
	}
	return all, private
}

func hasFloating(s novaServer) bool {
	for _, as := range s.Addresses {
		for _, a := range as {
			if a.Type == "floating" {
				return true
			}
		}
	}
	return false
}

// Describe reports the server's state and addresses. When the server asked for a floating
// IP and is ACTIVE without one, Describe allocates and associates it (see ensureFloatingIP):
// until that succeeds the instance is pending, and failed once the attempts are used up.
func (p *Provider) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	c, err := p.connect(ctx)
	if err != nil {
		return cloud.Instance{}, err
	}
	var srv novaServer
	if err := servers.Get(ctx, c.compute, id).ExtractInto(&srv); err != nil {
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return cloud.Instance{ID: id, State: cloud.StateGone, Detail: "Nova does not know the server"}, nil
		}
		return cloud.Instance{}, p.apiError("describe server "+id, err)
	}
	in, err := toInstance(srv)
	if err != nil {
		return cloud.Instance{}, err
	}
	if _, wants := srv.Metadata[MetaFloatingIP]; wants && in.State == cloud.StateRunning {
		if hasFloating(srv) {
			p.forgetFloatingState(id)
		} else {
			in = p.ensureFloatingIP(ctx, srv, in)
		}
	}
	return in, nil
}

// Destroy deletes the server (a server Nova does not know is already destroyed) and then
// releases the floating IPs allocated for it, found by their description, so none is left
// behind also after a restart. A boot volume goes with the server unless volume_persist
// (delete_on_termination, set at create).
func (p *Provider) Destroy(ctx context.Context, id string) error {
	c, err := p.connect(ctx)
	if err != nil {
		return err
	}
	if err := servers.Delete(ctx, c.compute, id).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return p.apiError("delete server "+id, err)
	}
	if err := p.releaseFloatingIPs(ctx, id); err != nil {
		return err
	}
	p.log.Info("server deleted", "server_id", id)
	return nil
}

// List returns the servers whose metadata carries all of tags (Nova cannot filter by
// metadata, so the project's servers are listed and filtered here).
func (p *Provider) List(ctx context.Context, tags map[string]string) ([]cloud.Instance, error) {
	c, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	all, err := p.listAll(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []cloud.Instance
	for _, s := range all {
		match := true
		for k, v := range tags {
			if got, ok := s.Metadata[k]; !ok || got != v {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		in, err := toInstance(s)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// transient reports whether err is worth retrying later: a server-side failure, rate
// limiting, or a connection that broke (which may also mean a lost answer).
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return code.Actual >= 500 || code.Actual == http.StatusTooManyRequests
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// apiError names the operation, scrubs credential values from the text and marks
// transient failures retryable. An unexpected HTTP answer is shortened to its status and
// the cloud's own message (gophercloud's text repeats the whole body).
func (p *Provider) apiError(op string, err error) error {
	msg := err.Error()
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		msg = fmt.Sprintf("HTTP %d from %s %s: %s", code.Actual, code.Method, code.URL, bodyMessage(code.Body))
	}
	wrapped := &opError{msg: "nova " + op + ": " + auth.Redact(msg, p.creds), err: err}
	if transient(err) {
		return &cloud.RetryableError{Err: wrapped}
	}
	return wrapped
}

// opError is an API error with a readable message; errors.Is and errors.As still see the
// original through Unwrap.
type opError struct {
	msg string
	err error
}

func (e *opError) Error() string { return e.msg }
func (e *opError) Unwrap() error { return e.err }

// bodyMessage finds the message of an OpenStack error body: Nova's {"itemNotFound":
// {"message": …}}, Neutron's {"NeutronError": {"message": …}}, Keystone's {"error":
// {"message": …}}; otherwise the start of the body.
func bodyMessage(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil {
		for _, v := range m {
			var inner struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(v, &inner) == nil && inner.Message != "" {
				return inner.Message
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(no message)"
	}
	return s
}
