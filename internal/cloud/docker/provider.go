package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"golang.org/x/sync/singleflight"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// LabelNetwork records on each container the network whose address is the node's address.
const LabelNetwork = "skyfleet-network"

// DefaultStopTimeout is how long Destroy lets a container stop (SIGTERM) before the engine
// kills it.
const DefaultStopTimeout = 10 * time.Second

// DefaultSubnetPool is the range from which networks created on demand take their subnet,
// one /24 each (256 networks). It lies outside Docker's own default pools (172.17.0.0/16 …
// 172.31.0.0/16 and 192.168.0.0/16), so the two never compete.
var DefaultSubnetPool = netip.MustParsePrefix("10.213.0.0/16")

// Options configures a Provider or a Driver; every field is optional.
type Options struct {
	// Logger receives create/destroy records; nil discards.
	Logger *slog.Logger
	// StopTimeout is the grace period of Destroy (default DefaultStopTimeout).
	StopTimeout time.Duration
	// SubnetPool is where networks created on demand get their subnet (default
	// DefaultSubnetPool); SubnetBits is each network's prefix length (default 24).
	SubnetPool netip.Prefix
	SubnetBits int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if !o.SubnetPool.IsValid() {
		o.SubnetPool = DefaultSubnetPool
	}
	if o.SubnetBits == 0 {
		o.SubnetBits = 24
	}
	return o
}

// Provider runs instances as containers on one Docker engine. It is safe for concurrent use.
type Provider struct {
	cli      *client.Client
	endpoint string
	opts     Options
	log      *slog.Logger

	netMu  sync.Mutex         // serialises network creation within this process
	images singleflight.Group // one pull/load per image at a time

	negMu      sync.Mutex
	negotiated atomic.Bool
}

// ready negotiates the API version once, before any other call. The client negotiates
// lazily by itself, but its methods read the version before taking its lock, so the first
// calls of concurrent goroutines would race; negotiating here under our own lock first
// makes every later read happen after the only write. A failed ping is retried by the next
// call.
func (p *Provider) ready(ctx context.Context) error {
	if p.negotiated.Load() {
		return nil
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.negotiated.Load() {
		return nil
	}
	ping, err := p.cli.Ping(ctx)
	if err != nil {
		return p.apiError("ping", err)
	}
	p.cli.NegotiateAPIVersionPing(ping)
	p.negotiated.Store(true)
	return nil
}

var (
	_ cloud.Provider = (*Provider)(nil)
	_ cloud.Lister   = (*Provider)(nil)
	_ cloud.Cleaner  = (*Provider)(nil)
)

// New returns a provider for the Docker engine at endpoint (unix:///var/run/docker.sock or
// tcp://HOST:PORT). It does not contact the engine; the API version is negotiated on the
// first call, so engines from API 1.41 (Docker 20.10) on work.
func New(endpoint string, opts Options) (*Provider, error) {
	if err := checkEndpoint(endpoint); err != nil {
		return nil, fmt.Errorf("docker provider: endpoint %w", err)
	}
	cli, err := client.NewClientWithOpts(client.WithHost(endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker provider: client for %s: %w", endpoint, err)
	}
	opts = opts.withDefaults()
	return &Provider{cli: cli, endpoint: endpoint, opts: opts, log: opts.Logger.With("component", "docker", "endpoint", endpoint)}, nil
}

// Close releases the client's idle connections.
func (p *Provider) Close() error { return p.cli.Close() }

// Client returns the Docker API client, for tests and tools that inspect what the provider
// created.
func (p *Provider) Client() *client.Client { return p.cli }

// Create starts a container for spec: it makes sure the image is present (pull, load or
// import by origin) and the network exists, creates the container with spec's labels, env
// and command, attaches it to the network under the node name as a DNS alias, and starts it.
// It is idempotent on spec.Token: a container labelled with the token is looked up first
// and returned (and started if it was created but never started), so a retry after a lost
// response never starts a second container.
func (p *Provider) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	if spec.Token == "" {
		return "", errors.New("docker create: empty idempotency token")
	}
	res, err := DecodeResource(spec.Resource)
	if err != nil {
		return "", fmt.Errorf("docker create: %w", err)
	}
	cctx, err := DecodeContext(spec.Context)
	if err != nil {
		return "", fmt.Errorf("docker create: %w", err)
	}
	if err := p.ready(ctx); err != nil {
		return "", err
	}
	log := p.log.With("infra_id", spec.InfraID, "node", spec.Node, "node_id", spec.Token)
	if id, found, err := p.findByToken(ctx, spec.Token); err != nil {
		return "", err
	} else if found {
		log.Info("container for this node id exists; adopting it", "container_id", short(id))
		return id, p.ensureStarted(ctx, id)
	}
	if err := p.ensureImage(ctx, res); err != nil {
		return "", err
	}
	netName := res.Network
	if netName == "" {
		netName = DefaultNetworkName(spec.InfraID)
	}
	if err := p.ensureNetwork(ctx, netName, spec.InfraID); err != nil {
		return "", err
	}
	name := res.Name
	if name == "" {
		name = DefaultContainerName(spec.Node, spec.Token)
	}
	labels := map[string]string{}
	for k, v := range spec.Tags {
		labels[k] = v
	}
	labels[cloud.TagManaged] = "1"
	labels[cloud.TagNodeID] = spec.Token
	if spec.InfraID != "" {
		labels[cloud.TagInfraID] = spec.InfraID
	}
	if spec.Node != "" {
		labels[cloud.TagNode] = spec.Node
	}
	labels[LabelNetwork] = netName
	env := append([]string{}, cctx.Env...)
	// Set last so that they win over a user variable of the same name: they are facts.
	env = append(env, "SKYFLEET_NODE_ID="+spec.Token, "SKYFLEET_INFRA_ID="+spec.InfraID, "SKYFLEET_NODE="+spec.Node)
	cfg := &container.Config{
		Image:    res.ImageRef(),
		Env:      env,
		Cmd:      cctx.Command,
		Labels:   labels,
		Hostname: hostname(name),
	}
	hostCfg := &container.HostConfig{
		NetworkMode: container.NetworkMode(netName),
		Resources:   container.Resources{NanoCPUs: res.NanoCPUs, Memory: res.Memory},
	}
	endpoint := &network.EndpointSettings{}
	if spec.Node != "" {
		endpoint.Aliases = []string{sanitize(spec.Node)}
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: endpoint}}

	created, err := p.cli.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, name)
	if err != nil && cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "network") {
		// A concurrent Cleanup removed the (then empty) network; make it again, once.
		if nerr := p.ensureNetwork(ctx, netName, spec.InfraID); nerr != nil {
			return "", nerr
		}
		created, err = p.cli.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, name)
	}
	if err != nil {
		if cerrdefs.IsConflict(err) {
			// Either our own earlier call won (a lost response or a concurrent retry), or
			// another container holds the name.
			if id, found, ferr := p.findByToken(ctx, spec.Token); ferr == nil && found {
				return id, p.ensureStarted(ctx, id)
			}
			return "", fmt.Errorf("docker create %s: container name %q is taken by another container; give each instance its own name (for example name: web-{{cut(node_id,0,8)}}) or leave name out", spec.Node, name)
		}
		return "", p.apiError("create container "+name, err)
	}
	if err := p.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		// A container that cannot start (a missing executable, a bad mount) never will:
		// remove it so that a retry starts from scratch, and report the engine's reason.
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := p.cli.ContainerRemove(rmCtx, created.ID, container.RemoveOptions{Force: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			log.Warn("could not remove a container that failed to start", "container_id", short(created.ID), "err", rerr)
		}
		return "", fmt.Errorf("docker create %s: start container %s: %w", spec.Node, name, err)
	}
	log.Info("container started", "container_id", short(created.ID), "container", name, "image", res.ImageRef(), "network", netName)
	return created.ID, nil
}

// findByToken looks a container up by its node-id label.
func (p *Provider) findByToken(ctx context.Context, token string) (string, bool, error) {
	cs, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", cloud.TagManaged+"=1"),
		filters.Arg("label", cloud.TagNodeID+"="+token),
	)})
	if err != nil {
		return "", false, p.apiError("find container by node id", err)
	}
	if len(cs) == 0 {
		return "", false, nil
	}
	// Two containers with one token cannot come from Create; prefer the oldest.
	sort.Slice(cs, func(i, j int) bool { return cs[i].Created < cs[j].Created })
	return cs[0].ID, true, nil
}

// ensureStarted starts a container that was created but never started (a create whose
// start was lost). Running, exited and other states are left as they are: Describe reports
// them.
func (p *Provider) ensureStarted(ctx context.Context, id string) error {
	c, err := p.cli.ContainerInspect(ctx, id)
	if err != nil {
		return p.apiError("inspect container "+short(id), err)
	}
	if c.State == nil || c.State.Status != container.StateCreated {
		return nil
	}
	if err := p.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("docker create: start container %s: %w", short(id), err)
	}
	return nil
}

// Destroy stops the container (SIGTERM, then SIGKILL after the stop timeout) and removes it
// with its anonymous volumes. A container that no longer exists is success. It refuses to
// touch a container that skyfleet did not create (no skyfleet=1 label).
func (p *Provider) Destroy(ctx context.Context, id string) error {
	if err := p.ready(ctx); err != nil {
		return err
	}
	c, err := p.cli.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return p.apiError("inspect container "+short(id), err)
	}
	if c.Config == nil || c.Config.Labels[cloud.TagManaged] != "1" {
		return fmt.Errorf("docker destroy: container %s (%s) was not created by skyfleet (no %s=1 label); refusing to remove it",
			short(id), strings.TrimPrefix(c.Name, "/"), cloud.TagManaged)
	}
	secs := int(p.opts.StopTimeout.Seconds())
	if err := p.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		// Removal below forces a kill anyway; the stop is only the courteous part.
		p.log.Warn("stop container failed; removing it by force", "container_id", short(id), "err", err)
	}
	err = p.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || cerrdefs.IsNotFound(err) || (cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")) {
		p.log.Info("container removed", "container_id", short(id), "node_id", c.Config.Labels[cloud.TagNodeID])
		return nil
	}
	return p.apiError("remove container "+short(id), err)
}

// Describe reports the container's state (see stateOf for the mapping) and its address on
// its skyfleet network. A container that no longer exists is StateGone with a nil error. A
// running container cut off from its network has no address; its health checks then fail
// against the address the engine last saw.
func (p *Provider) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	if err := p.ready(ctx); err != nil {
		return cloud.Instance{}, err
	}
	c, err := p.cli.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return cloud.Instance{ID: id, State: cloud.StateGone}, nil
	}
	if err != nil {
		return cloud.Instance{}, p.apiError("inspect container "+short(id), err)
	}
	return instanceOf(c), nil
}

// instanceOf converts an inspect answer.
func instanceOf(c container.InspectResponse) cloud.Instance {
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	state, detail := stateOf(c.State)
	in := cloud.Instance{ID: c.ID, Token: labels[cloud.TagNodeID], State: state, Tags: labels, Detail: detail}
	if t, err := time.Parse(time.RFC3339Nano, c.Created); err == nil {
		in.Created = t
	}
	netName := labels[LabelNetwork]
	if c.NetworkSettings != nil {
		if ep := c.NetworkSettings.Networks[netName]; ep != nil && ep.IPAddress != "" {
			in.Addresses = []string{ep.IPAddress}
			in.PrivateAddress = ep.IPAddress
		}
	}
	if len(in.Addresses) == 0 && state == cloud.StateRunning && netName != "" {
		in.Detail = "not attached to network " + netName
	}
	return in
}

// List returns the containers that carry all of tags (as labels). It only ever returns
// containers labelled skyfleet=1, also when tags is empty.
func (p *Provider) List(ctx context.Context, tags map[string]string) ([]cloud.Instance, error) {
	if err := p.ready(ctx); err != nil {
		return nil, err
	}
	args := filters.NewArgs(filters.Arg("label", cloud.TagManaged+"=1"))
	for k, v := range tags {
		args.Add("label", k+"="+v)
	}
	cs, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, p.apiError("list containers", err)
	}
	out := make([]cloud.Instance, 0, len(cs))
	for _, s := range cs {
		c, err := p.cli.ContainerInspect(ctx, s.ID)
		if cerrdefs.IsNotFound(err) {
			continue // removed between the list and the inspect
		}
		if err != nil {
			return nil, p.apiError("inspect container "+short(s.ID), err)
		}
		out = append(out, instanceOf(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// apiError names the operation and marks engine-side trouble (no connection, a 5xx
// answer, a timeout) as retryable.
func (p *Provider) apiError(op string, err error) error {
	err = fmt.Errorf("docker %s at %s: %w", op, p.endpoint, err)
	if client.IsErrConnectionFailed(err) || cerrdefs.IsUnavailable(err) || cerrdefs.IsInternal(err) ||
		errors.Is(err, context.DeadlineExceeded) {
		return &cloud.RetryableError{Err: err}
	}
	return err
}

// DefaultNetworkName is the network of an infrastructure whose resource names none.
func DefaultNetworkName(infraID string) string {
	return "skyfleet-" + sanitize(prefix(infraID, 8))
}

// DefaultContainerName is the container name of a node instance whose resource names none.
func DefaultContainerName(node, token string) string {
	return "skyfleet-" + sanitize(node) + "-" + sanitize(prefix(token, 8))
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// sanitize makes s usable in container names, network names and DNS aliases.
func sanitize(s string) string {
	s = unsafeName.ReplaceAllString(s, "-")
	s = strings.Trim(s, "-.")
	if s == "" {
		return "x"
	}
	return s
}

// hostname derives a valid host name (at most 63 characters, no dots or underscores).
func hostname(name string) string {
	h := strings.NewReplacer("_", "-", ".", "-").Replace(name)
	if len(h) > 63 {
		h = h[:63]
	}
	return strings.Trim(h, "-")
}

func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func short(id string) string { return prefix(id, 12) }
