package ec2

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// Defaults of Options.
const (
	// DefaultMaxAttempts is how many times one API call is tried (the first attempt
	// included) before a throttling or transient error is returned.
	DefaultMaxAttempts = 5
	// DefaultMaxBackoff caps the delay between two attempts.
	DefaultMaxBackoff = 20 * time.Second
	// DefaultConsistencyGrace is how long after RunInstances an instance that
	// DescribeInstances does not know yet is still reported as pending rather than gone.
	// AWS documents that new resources can take "up to several minutes" to appear.
	DefaultConsistencyGrace = 5 * time.Minute
)

// Options configures a Driver; every field is optional.
type Options struct {
	// Logger receives create and destroy records; nil discards.
	Logger *slog.Logger
	// HTTPClient sends the API requests; nil uses the SDK's default client (which honours
	// each call's context and the proxy environment).
	HTTPClient *http.Client
	// MaxAttempts bounds the attempts of one API call (default DefaultMaxAttempts).
	MaxAttempts int
	// MaxBackoff caps the delay between attempts (default DefaultMaxBackoff).
	MaxBackoff time.Duration
	// Backoff computes the delay before retry attempt n after err; nil uses the SDK's
	// exponential backoff with jitter (throttling starts at 1 s). Tests use it to avoid
	// sleeping and to observe the retries.
	Backoff retry.BackoffDelayer
	// ConsistencyGrace is DefaultConsistencyGrace when zero.
	ConsistencyGrace time.Duration
	// ListPageSize is the MaxResults of List's DescribeInstances pages (EC2 allows 5 to
	// 1000); default 1000.
	ListPageSize int
	// Clock tells the time for the consistency grace; default time.Now.
	Clock func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.ConsistencyGrace <= 0 {
		o.ConsistencyGrace = DefaultConsistencyGrace
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.ListPageSize == 0 {
		o.ListPageSize = 1000
	}
	o.ListPageSize = min(max(o.ListPageSize, 5), 1000)
	return o
}

// Driver binds ec2 resource sections to providers, one per (endpoint, region, access key),
// created on first use and reused afterwards.
type Driver struct {
	opts    Options
	created *launches

	mu        sync.Mutex
	providers map[string]*Provider
}

var _ cloud.Driver = (*Driver)(nil)

// NewDriver returns a driver whose providers use opts.
func NewDriver(opts Options) *Driver {
	opts = opts.withDefaults()
	return &Driver{opts: opts, created: newLaunches(opts.Clock, opts.ConsistencyGrace), providers: map[string]*Provider{}}
}

// Bind decodes resource strictly and returns the provider of its endpoint, region and
// credentials. creds must hold accesskey and secretkey. It does not contact EC2.
func (d *Driver) Bind(resource map[string]any, creds *cloud.Credentials) (cloud.Provider, error) {
	r, err := DecodeResource(resource)
	if err != nil {
		return nil, err
	}
	ak, sk, err := credentialsOf(creds, r.Endpoint)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(sk))
	key := r.Endpoint + "\x00" + r.RegionName + "\x00" + ak + "\x00" + hex.EncodeToString(sum[:])
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.providers[key]; ok {
		return p, nil
	}
	p := d.newProvider(r.Endpoint, r.RegionName, ak, sk, creds)
	d.providers[key] = p
	return p, nil
}

// credentialsOf reads the access and secret key; errors name the missing key, never a value.
func credentialsOf(creds *cloud.Credentials, endpoint string) (accessKey, secretKey string, err error) {
	if creds == nil {
		return "", "", fmt.Errorf("ec2 resource at %s: no credentials were selected; add an entry with type: ec2 (and endpoint: %s if you have several) and auth_data: {accesskey: …, secretkey: …} to auth_data.yaml", endpoint, endpoint)
	}
	var missing []string
	ak, ok := creds.Get("accesskey")
	if !ok || ak == "" {
		missing = append(missing, "accesskey")
	}
	sk, ok := creds.Get("secretkey")
	if !ok || sk == "" {
		missing = append(missing, "secretkey")
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("ec2 resource at %s: the selected auth_data lacks %s (an ec2 entry needs accesskey and secretkey)", endpoint, joinAnd(missing))
	}
	return ak, sk, nil
}

func joinAnd(s []string) string {
	if len(s) == 2 {
		return s[0] + " and " + s[1]
	}
	return s[0]
}

func (d *Driver) newProvider(endpoint, region, ak, sk string, creds *cloud.Credentials) *Provider {
	o := d.opts
	retryer := retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		if o.Backoff != nil {
			so.Backoff = o.Backoff
		}
	})
	awsOpts := awsec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		Retryer:      retryer,
	}
	if o.HTTPClient != nil {
		awsOpts.HTTPClient = o.HTTPClient
	}
	return &Provider{
		api:      awsec2.New(awsOpts),
		endpoint: endpoint,
		region:   region,
		creds:    creds,
		created:  d.created,
		pageSize: int32(o.ListPageSize),
		log:      o.Logger.With("component", "ec2", "endpoint", endpoint, "region", region),
	}
}

// launches remembers when this process started each instance, so that a NotFound from
// DescribeInstances right after RunInstances (EC2's eventual consistency) reads as pending.
// Entries leave when the instance has been seen, destroyed, or the grace has passed.
type launches struct {
	clock func() time.Time
	grace time.Duration

	mu sync.Mutex
	at map[string]time.Time
}

func newLaunches(clock func() time.Time, grace time.Duration) *launches {
	return &launches{clock: clock, grace: grace, at: map[string]time.Time{}}
}

func (l *launches) add(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	for k, t := range l.at { // keep the map bounded by the launches of the last grace period
		if now.Sub(t) >= l.grace {
			delete(l.at, k)
		}
	}
	l.at[id] = now
}

func (l *launches) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.at, id)
}

// young reports whether id was launched by this process less than the grace period ago,
// and since when.
func (l *launches) young(id string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.at[id]
	if !ok {
		return 0, false
	}
	age := l.clock().Sub(t)
	if age >= l.grace {
		delete(l.at, id)
		return age, false
	}
	return age, true
}
