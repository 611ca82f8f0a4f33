package nova

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// Defaults of Options.
const (
	// DefaultFloatingIPAttempts bounds the attempts to allocate and associate a floating IP
	// (Occopus tries 60 times, 10 s apart).
	DefaultFloatingIPAttempts = 60
	// DefaultFloatingIPBackoff is the delay after the first failed attempt; it doubles after
	// each further failure up to DefaultFloatingIPMaxBackoff.
	DefaultFloatingIPBackoff = 2 * time.Second
	// DefaultFloatingIPMaxBackoff caps the delay between attempts (Occopus' interval).
	DefaultFloatingIPMaxBackoff = 10 * time.Second
	// DefaultRequestTimeout bounds one HTTP request of the default client, because
	// gophercloud's endpoint discovery runs without the caller's context.
	DefaultRequestTimeout = 2 * time.Minute
)

// Options configures a Driver; every field is optional.
type Options struct {
	// Logger receives create, destroy and floating IP records; nil discards.
	Logger *slog.Logger
	// HTTPClient sends the API requests; nil uses a client with DefaultRequestTimeout.
	HTTPClient *http.Client
	// FloatingIPAttempts, FloatingIPBackoff and FloatingIPMaxBackoff bound the floating IP
	// retries (defaults above). After FloatingIPAttempts failures the instance is failed.
	FloatingIPAttempts   int
	FloatingIPBackoff    time.Duration
	FloatingIPMaxBackoff time.Duration
	// Clock tells the time for the floating IP backoff; default time.Now.
	Clock func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultRequestTimeout}
	}
	if o.FloatingIPAttempts <= 0 {
		o.FloatingIPAttempts = DefaultFloatingIPAttempts
	}
	if o.FloatingIPBackoff <= 0 {
		o.FloatingIPBackoff = DefaultFloatingIPBackoff
	}
	if o.FloatingIPMaxBackoff <= 0 {
		o.FloatingIPMaxBackoff = DefaultFloatingIPMaxBackoff
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// Driver binds nova resource sections to providers, one per Keystone endpoint, project,
// region and credential, created on first use and reused afterwards (with their token).
type Driver struct {
	opts Options

	mu        sync.Mutex
	providers map[string]*Provider
}

var _ cloud.Driver = (*Driver)(nil)

// NewDriver returns a driver whose providers use opts.
func NewDriver(opts Options) *Driver {
	return &Driver{opts: opts.withDefaults(), providers: map[string]*Provider{}}
}

// Bind decodes resource strictly and returns the provider for its endpoint, project,
// region and credentials. It does not contact the cloud: authentication happens on the
// provider's first call.
func (d *Driver) Bind(resource map[string]any, creds *cloud.Credentials) (cloud.Provider, error) {
	r, warnings, err := DecodeResource(resource)
	if err != nil {
		return nil, err
	}
	ao, who, err := authOptions(r, creds)
	if err != nil {
		return nil, err
	}
	secret := ao.Password + ao.ApplicationCredentialSecret
	sum := sha256.Sum256([]byte(secret))
	key := r.IdentityEndpoint + "\x00" + r.ProjectID + "\x00" + r.UserDomainName + "\x00" + r.RegionName + "\x00" + who + "\x00" + hex.EncodeToString(sum[:])
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.providers[key]; ok {
		return p, nil
	}
	p := newProvider(r, ao, creds, d.opts)
	for _, w := range warnings {
		p.log.Warn(w)
	}
	d.providers[key] = p
	return p, nil
}

// authOptions builds Keystone v3 options from the selected credentials: username and
// password (scoped to the project, in user_domain_name), or type: application_credential
// with id and secret. Errors name what is missing, never a value. who identifies the
// credential (user or application credential id) for the provider cache.
func authOptions(r Resource, creds *cloud.Credentials) (gophercloud.AuthOptions, string, error) {
	ao := gophercloud.AuthOptions{IdentityEndpoint: r.IdentityEndpoint, AllowReauth: true}
	if creds == nil {
		return ao, "", fmt.Errorf("nova resource at %s: no credentials were selected; add an entry with type: nova (and endpoint: %s if you have several) and auth_data: {username: …, password: …} or {type: application_credential, id: …, secret: …} to auth_data.yaml", r.Endpoint, r.Endpoint)
	}
	get := func(k string) string { v, _ := creds.Get(k); return v }
	missing := func(keys ...string) []string {
		var out []string
		for _, k := range keys {
			if get(k) == "" {
				out = append(out, k)
			}
		}
		return out
	}
	switch t := get("type"); t {
	case "application_credential":
		if m := missing("id", "secret"); len(m) > 0 {
			return ao, "", fmt.Errorf("nova resource at %s: the selected auth_data (type: application_credential) lacks %s (it needs id and secret)", r.Endpoint, joinAnd(m))
		}
		ao.ApplicationCredentialID = get("id")
		ao.ApplicationCredentialSecret = get("secret")
		return ao, "appcred:" + ao.ApplicationCredentialID, nil
	case "", "password":
		if m := missing("username", "password"); len(m) > 0 {
			return ao, "", fmt.Errorf("nova resource at %s: the selected auth_data lacks %s (it needs username and password, or type: application_credential with id and secret)", r.Endpoint, joinAnd(m))
		}
		ao.Username = get("username")
		ao.Password = get("password")
		ao.DomainName = r.UserDomainName
		ao.Scope = &gophercloud.AuthScope{ProjectID: r.ProjectID}
		return ao, "user:" + ao.Username, nil
	default:
		return ao, "", fmt.Errorf("nova resource at %s: auth_data type %q is not supported (use username and password, or type: application_credential; VOMS was dropped in Occopus 1.10)", r.Endpoint, t)
	}
}

func joinAnd(s []string) string {
	if len(s) == 2 {
		return s[0] + " and " + s[1]
	}
	return s[0]
}

// clients holds the authenticated service clients of a provider.
type clients struct {
	pc      *gophercloud.ProviderClient
	eo      gophercloud.EndpointOpts
	compute *gophercloud.ServiceClient
	network *gophercloud.ServiceClient // found on first need
}

// connect authenticates on first use; a failure is retried by the next call.
func (p *Provider) connect(ctx context.Context) (*clients, error) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.conn != nil {
		return p.conn, nil
	}
	pc, err := openstack.NewClient(p.ao.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("nova: keystone endpoint %s: %w", p.ao.IdentityEndpoint, err)
	}
	pc.HTTPClient = *p.opts.HTTPClient
	pc.UserAgent.Prepend("skyfleet")
	ao := p.ao
	if err := openstack.AuthenticateV3(ctx, pc, &ao, gophercloud.EndpointOpts{}); err != nil {
		return nil, p.apiError("authenticate with keystone "+p.ao.IdentityEndpoint, err)
	}
	eo := gophercloud.EndpointOpts{Region: p.res.RegionName, Availability: gophercloud.AvailabilityPublic}
	compute, err := openstack.NewComputeV2(pc, eo)
	if err != nil {
		return nil, p.apiError("find the compute endpoint in the catalog", err)
	}
	p.conn = &clients{pc: pc, eo: eo, compute: compute}
	return p.conn, nil
}

// network returns the Neutron client, finding its endpoint on first need (it costs a
// version discovery request, and only floating IPs need it).
func (p *Provider) network(ctx context.Context) (*gophercloud.ServiceClient, error) {
	c, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if c.network != nil {
		return c.network, nil
	}
	n, err := openstack.NewNetworkV2(c.pc, c.eo)
	if err != nil {
		return nil, p.apiError("find the network (Neutron) endpoint in the catalog, needed for floating IPs", err)
	}
	c.network = n
	return n, nil
}
