package ec2

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/cloudinit"
	"github.com/skyfleet/skyfleet/internal/cloud/ec2/ec2test"
)

const (
	testAccessKey = "AKIAFAKEACCESS0001"
	testSecretKey = "fakeSecret/Key+0123456789abcdefghijklmnopq"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backoffs records the SDK's retry decisions without sleeping.
type backoffs struct {
	mu   sync.Mutex
	errs []error
}

func (b *backoffs) BackoffDelay(_ int, err error) (time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, err)
	return 0, nil
}

func (b *backoffs) codes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.errs {
		out = append(out, errorCode(e))
	}
	return out
}

type env struct {
	t     *testing.T
	srv   *ec2test.Server
	drv   *Driver
	clock *fakeClock
	back  *backoffs
	logs  *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), back: &backoffs{}, logs: &syncBuffer{}}
	e.srv = ec2test.NewT(t, ec2test.Options{Clock: e.clock.Now})
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	opts := Options{
		Logger:      slog.New(slog.NewTextHandler(e.logs, nil)),
		HTTPClient:  &http.Client{Transport: tr},
		MaxAttempts: 4,
		Backoff:     e.back,
		Clock:       e.clock.Now,
	}
	for _, m := range mod {
		m(&opts)
	}
	e.drv = NewDriver(opts)
	t.Cleanup(func() { t.Log(e.logs.String()) })
	return e
}

func (e *env) resource(kv ...any) map[string]any {
	return with(map[string]any{
		"type": "ec2", "endpoint": e.srv.URL, "regionname": "eu-west-1",
		"image_id": "ami-0abc", "instance_type": "t3.micro",
	}, kv...)
}

func testCreds() *cloud.Credentials {
	return cloud.NewCredentials(map[string]any{"accesskey": testAccessKey, "secretkey": testSecretKey})
}

func (e *env) provider(res map[string]any) *Provider {
	e.t.Helper()
	p, err := e.drv.Bind(res, testCreds())
	if err != nil {
		e.t.Fatalf("Bind: %v", err)
	}
	return p.(*Provider)
}

var tokenSeq int

func newSpec(res map[string]any, node string) cloud.InstanceSpec {
	tokenSeq++
	token := "5f0c2a9e-0000-4000-8000-" + strings.Repeat("0", 10) + string(rune('a'+tokenSeq%26)) + string(rune('a'+tokenSeq/26))
	return cloud.InstanceSpec{
		Token: token, InfraID: "infra-0123456789", InfraName: "demo", Node: node, Resource: res,
		Tags: map[string]string{cloud.TagManaged: "1", cloud.TagInfraID: "infra-0123456789", cloud.TagNode: node, cloud.TagNodeID: token, cloud.TagInfraName: "demo"},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := e.resource("key_name", "ops", "security_group_ids", []any{"sg-1", "sg-2"}, "subnet_id", "subnet-9",
		"tags", map[string]any{"team": "web"})
	p := e.provider(res)
	spec := newSpec(res, "app")
	spec.UserData = "#cloud-config\nruncmd:\n  - echo hello from {{ignored}}\n"

	id, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	in, ok := e.srv.Instance(id)
	if !ok {
		t.Fatalf("the fake has no instance %s", id)
	}
	if in.ImageID != "ami-0abc" || in.InstanceType != "t3.micro" || in.KeyName != "ops" || in.SubnetID != "subnet-9" ||
		strings.Join(in.SecurityGroupIDs, ",") != "sg-1,sg-2" || in.ClientToken != spec.Token {
		t.Errorf("RunInstances arrived as %+v", in)
	}
	if in.UserData != spec.UserData || in.RawUserData != base64.StdEncoding.EncodeToString([]byte(spec.UserData)) {
		t.Errorf("user data arrived as %q (raw %q); want the rendered text, base64-encoded on the wire", in.UserData, in.RawUserData)
	}
	wantTags := map[string]string{
		"team": "web", "Name": "skyfleet-demo-infra-01-app-" + spec.Token[:8],
		cloud.TagManaged: "1", cloud.TagInfraID: "infra-0123456789", cloud.TagNode: "app", cloud.TagNodeID: spec.Token, cloud.TagInfraName: "demo",
	}
	if len(in.Tags) != len(wantTags) {
		t.Errorf("tags = %v, want %v", in.Tags, wantTags)
	}
	for k, v := range wantTags {
		if in.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, in.Tags[k], v)
		}
	}
	reqs := e.srv.Requests()
	if reqs[0].AccessKey != testAccessKey || reqs[0].Region != "eu-west-1" {
		t.Errorf("request signed for %q in %q; want the access key of auth_data in eu-west-1", reqs[0].AccessKey, reqs[0].Region)
	}

	got, err := p.Describe(ctx, id)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if got.State != cloud.StatePending || strings.Join(got.Addresses, ",") != in.PrivateIP || got.PrivateAddress != in.PrivateIP ||
		got.Token != spec.Token || got.Tags[cloud.TagNode] != "app" || !got.Created.Equal(e.clock.Now()) {
		t.Errorf("Describe while pending = %+v", got)
	}

	e.srv.Boot(id)
	in, _ = e.srv.Instance(id)
	got, err = p.Describe(ctx, id)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	// Occopus' resource_address: public DNS, public IP, private IP; the first is the address.
	if got.State != cloud.StateRunning || strings.Join(got.Addresses, ",") != in.PublicDNS+","+in.PublicIP+","+in.PrivateIP || got.Address() != in.PublicDNS {
		t.Errorf("Describe when running = %+v", got)
	}

	if err := p.Destroy(ctx, id); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if in, _ := e.srv.Instance(id); in.State != "terminated" {
		t.Errorf("after Destroy the instance is %s", in.State)
	}
	if got, err := p.Describe(ctx, id); err != nil || got.State != cloud.StateGone || !strings.Contains(got.Detail, "terminated") {
		t.Errorf("Describe after Destroy = %+v, %v; want gone (terminated)", got, err)
	}
	if err := p.Destroy(ctx, id); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if err := p.Destroy(ctx, "i-0000000000000dead"); err != nil {
		t.Errorf("Destroy of an unknown instance: %v", err)
	}
	if got, err := p.Describe(ctx, "i-0000000000000dead"); err != nil || got.State != cloud.StateGone {
		t.Errorf("Describe of an unknown instance = %+v, %v; want gone", got, err)
	}
	if n := len(e.srv.Instances()); n != 1 {
		t.Errorf("the fake holds %d instances, want 1", n)
	}
}

func TestNameTag(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	tests := []struct {
		name string
		res  map[string]any
		want string
	}{
		{"name key", e.resource("name", "db-primary", "tags", map[string]any{"Name": "ignored"}), "db-primary"},
		{"Name tag without name", e.resource("tags", map[string]any{"Name": "from-tags"}), "from-tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := e.provider(tt.res).Create(ctx, newSpec(tt.res, "db"))
			if err != nil {
				t.Fatal(err)
			}
			if in, _ := e.srv.Instance(id); in.Tags["Name"] != tt.want {
				t.Errorf("Name tag = %q, want %q", in.Tags["Name"], tt.want)
			}
		})
	}
}

func TestStateMapping(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := e.resource()
	p := e.provider(res)
	id, err := p.Create(ctx, newSpec(res, "app"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ec2    string
		want   cloud.State
		detail string
	}{
		{"pending", cloud.StatePending, ""},
		{"running", cloud.StateRunning, ""},
		{"stopping", cloud.StateStopped, "stopping: Client.UserInitiatedShutdown: User initiated shutdown"},
		{"stopped", cloud.StateStopped, "stopped: Client.UserInitiatedShutdown: User initiated shutdown"},
		{"shutting-down", cloud.StateGone, "shutting-down: Client.UserInitiatedShutdown: User initiated shutdown"},
		{"terminated", cloud.StateGone, "terminated: Server.SpotInstanceTermination: Spot instance termination"},
	}
	for _, tt := range tests {
		t.Run(tt.ec2, func(t *testing.T) {
			reason := tt.detail
			if i := strings.Index(reason, ": "); i >= 0 {
				reason = reason[i+2:]
			}
			e.srv.SetState(id, tt.ec2, reason)
			got, err := p.Describe(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.want || got.Detail != tt.detail {
				t.Errorf("EC2 %s → %s (%q), want %s (%q)", tt.ec2, got.State, got.Detail, tt.want, tt.detail)
			}
		})
	}
	t.Run("unknown state", func(t *testing.T) {
		e.srv.SetState(id, "hibernating", "")
		_, err := p.Describe(ctx, id)
		if err == nil || !strings.Contains(err.Error(), `unknown instance state "hibernating"`) {
			t.Errorf("Describe of an unknown state = %v; want an error naming it", err)
		}
	})
}

func TestAddresses(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := e.resource()
	p := e.provider(res)
	id, err := p.Create(ctx, newSpec(res, "app"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetState(id, "running", "")
	tests := []struct {
		name                 string
		dns, public, private string
		want                 []string
	}{
		{"all three", "ec2-203-0-113-7.compute-1.amazonaws.com", "203.0.113.7", "10.0.0.7", []string{"ec2-203-0-113-7.compute-1.amazonaws.com", "203.0.113.7", "10.0.0.7"}},
		{"private only", "", "", "10.0.0.7", []string{"10.0.0.7"}},
		{"public IP without DNS", "", "203.0.113.7", "10.0.0.7", []string{"203.0.113.7", "10.0.0.7"}},
		{"repeats removed", "10.0.0.7", "10.0.0.7", "10.0.0.7", []string{"10.0.0.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.srv.SetAddresses(id, tt.dns, tt.public, tt.private)
			got, err := p.Describe(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.Addresses, ",") != strings.Join(tt.want, ",") || got.PrivateAddress != tt.private {
				t.Errorf("addresses = %v (private %q), want %v (private %q)", got.Addresses, got.PrivateAddress, tt.want, tt.private)
			}
		})
	}
}

func TestThrottling(t *testing.T) {
	t.Run("retried until it passes", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource()
		e.srv.Throttle("RunInstances", 2)
		id, err := e.provider(res).Create(ctxT(t), newSpec(res, "app"))
		if err != nil {
			t.Fatalf("Create under throttling: %v", err)
		}
		if n := e.srv.Calls("RunInstances"); n != 3 {
			t.Errorf("RunInstances was called %d times, want 3 (two throttled, one success)", n)
		}
		if got := strings.Join(e.back.codes(), ","); got != "RequestLimitExceeded,RequestLimitExceeded" {
			t.Errorf("backoff was asked for %q; want one delay per throttled attempt", got)
		}
		if n := len(e.srv.Instances()); n != 1 || e.srv.Instances()[0].ID != id {
			t.Errorf("the fake holds %d instances, want the one created", n)
		}
	})
	t.Run("still throttled after every attempt", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource()
		e.srv.Throttle("DescribeInstances", 10)
		_, err := e.provider(res).Describe(ctxT(t), "i-0123")
		if err == nil {
			t.Fatal("Describe succeeded under permanent throttling")
		}
		if !cloud.IsRetryable(err) {
			t.Errorf("error %v is not marked retryable", err)
		}
		t.Logf("error: %v", err)
		if n := e.srv.Calls("DescribeInstances"); n != 4 {
			t.Errorf("DescribeInstances was called %d times, want MaxAttempts = 4", n)
		}
	})
	t.Run("client errors are not retried", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource("image_id", "bad-image")
		_, err := e.provider(res).Create(ctxT(t), newSpec(res, "app"))
		if err == nil || cloud.IsRetryable(err) || !strings.Contains(err.Error(), "InvalidAMIID.Malformed") {
			t.Errorf("Create with a bad image = %v; want a permanent error naming InvalidAMIID.Malformed", err)
		}
		if n := e.srv.Calls("RunInstances"); n != 1 {
			t.Errorf("RunInstances was called %d times, want 1", n)
		}
	})
}

func TestCreateAfterLostResponse(t *testing.T) {
	t.Run("retried by the SDK", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource()
		spec := newSpec(res, "app")
		e.srv.LoseResponses("RunInstances", 1)
		id, err := e.provider(res).Create(ctxT(t), spec)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		reqs := e.srv.Requests()
		if len(reqs) != 2 || reqs[0].Form.Get("ClientToken") != spec.Token || reqs[1].Form.Get("ClientToken") != spec.Token {
			t.Errorf("requests = %d, tokens %q; want two RunInstances with the node id as ClientToken", len(reqs), tokensOf(reqs))
		}
		if all := e.srv.Instances(); len(all) != 1 || all[0].ID != id {
			t.Errorf("the fake holds %d instances; want exactly the one returned", len(all))
		}
	})
	t.Run("retried by the engine", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.MaxAttempts = 1 })
		res := e.resource()
		p := e.provider(res)
		spec := newSpec(res, "app")
		e.srv.LoseResponses("RunInstances", 1)
		_, err := p.Create(ctxT(t), spec)
		if err == nil || !cloud.IsRetryable(err) {
			t.Fatalf("Create with a lost response = %v; want a retryable error", err)
		}
		id, err := p.Create(ctxT(t), spec)
		if err != nil {
			t.Fatalf("second Create: %v", err)
		}
		if all := e.srv.Instances(); len(all) != 1 || all[0].ID != id {
			t.Errorf("the fake holds %d instances; want exactly the one returned", len(all))
		}
	})
}

func tokensOf(reqs []ec2test.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Form.Get("ClientToken"))
	}
	return out
}

func TestEventualConsistency(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := e.resource()
	p := e.provider(res)
	e.srv.HideNewInstances(3)
	id, err := p.Create(ctx, newSpec(res, "app"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		got, err := p.Describe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != cloud.StatePending || !strings.Contains(got.Detail, "not visible in DescribeInstances yet") {
			t.Fatalf("Describe #%d of a new, not yet visible instance = %+v; want pending", i+1, got)
		}
	}
	// A destroy that EC2 cannot see yet must not be taken as done.
	err = p.Destroy(ctx, id)
	if !cloud.IsRetryable(err) {
		t.Fatalf("Destroy of a not yet visible instance = %v; want a retryable error", err)
	}
	if in, _ := e.srv.Instance(id); in.State != "pending" {
		t.Errorf("instance is %s after the refused destroy", in.State)
	}
	got, err := p.Describe(ctx, id)
	if err != nil || got.State != cloud.StatePending || got.Detail != "" {
		t.Fatalf("Describe once visible = %+v, %v; want pending without a note", got, err)
	}

	// Past the grace period a NotFound means gone, and a restarted provider (which does
	// not know the launch times) takes NotFound as gone.
	id2, err := p.Create(ctx, newSpec(res, "app"))
	if err != nil {
		t.Fatal(err)
	}
	restarted := newEnv(t)
	restarted.srv = e.srv
	if got, err := restarted.provider(res).Describe(ctx, id2); err != nil || got.State != cloud.StateGone {
		t.Errorf("Describe after a restart = %+v, %v; want gone", got, err)
	}
	e.clock.Advance(DefaultConsistencyGrace)
	if got, err := p.Describe(ctx, id2); err != nil || got.State != cloud.StateGone {
		t.Errorf("Describe past the grace period = %+v, %v; want gone", got, err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := e.resource()
	p := e.provider(res)
	mk := func(infra, node string) (string, cloud.InstanceSpec) {
		s := newSpec(res, node)
		s.InfraID = infra
		s.Tags[cloud.TagInfraID] = infra
		id, err := p.Create(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return id, s
	}
	a1, s1 := mk("infra-a", "web")
	a2, _ := mk("infra-a", "db")
	a3, _ := mk("infra-a", "web")
	mk("infra-b", "web")
	e.srv.AddInstance(ec2test.Instance{ImageID: "ami-0abc", State: "running", Tags: map[string]string{"team": "other"}})
	e.srv.Boot(a1)
	e.srv.SetState(a2, "stopped", "")
	if err := p.Destroy(ctx, a3); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		tags map[string]string
		want []string
	}{
		{"infrastructure", map[string]string{cloud.TagInfraID: "infra-a"}, []string{a1, a2}},
		{"infrastructure and node", map[string]string{cloud.TagInfraID: "infra-a", cloud.TagNode: "web"}, []string{a1}},
		{"node id", map[string]string{cloud.TagNodeID: s1.Token}, []string{a1}},
		{"no match", map[string]string{cloud.TagInfraID: "infra-z"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.List(ctx, tt.tags)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, in := range got {
				ids = append(ids, in.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Errorf("List(%v) = %v, want %v", tt.tags, ids, tt.want)
			}
		})
	}
	got, _ := p.List(ctx, map[string]string{cloud.TagNodeID: s1.Token})
	if len(got) == 1 && (got[0].Token != s1.Token || got[0].State != cloud.StateRunning || got[0].Address() == "") {
		t.Errorf("listed instance = %+v; want its token, state and addresses", got[0])
	}
	// The request carried the filters EC2 understands.
	last := e.srv.Requests()[len(e.srv.Requests())-1].Form
	if last.Get("Filter.1.Name") != "tag:"+cloud.TagNodeID || last.Get("Filter.1.Value.1") != s1.Token || last.Get("Filter.2.Name") != "instance-state-name" {
		t.Errorf("DescribeInstances filters = %v", last)
	}
}

func TestUserDataChecked(t *testing.T) {
	e := newEnv(t)
	res := e.resource()
	p := e.provider(res)
	tests := []struct {
		name     string
		userData string
		want     error
	}{
		{"too large", "#!/bin/sh\n" + strings.Repeat("x", cloudinit.EC2Limit), cloudinit.ErrTooLarge},
		{"cloud-config that does not parse", "#cloud-config\nruncmd: [\n", cloudinit.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := newSpec(res, "app")
			spec.UserData = tt.userData
			_, err := p.Create(ctxT(t), spec)
			if !errors.Is(err, tt.want) {
				t.Errorf("Create = %v; want %v", err, tt.want)
			}
		})
	}
	if n := e.srv.Calls("RunInstances"); n != 0 {
		t.Errorf("RunInstances was called %d times for user data that cannot work", n)
	}
}

func TestCredentials(t *testing.T) {
	e := newEnv(t)
	res := e.resource()
	t.Run("missing", func(t *testing.T) {
		tests := []struct {
			name  string
			creds *cloud.Credentials
			want  string
		}{
			{"none selected", nil, "no credentials were selected"},
			{"no secret key", cloud.NewCredentials(map[string]any{"accesskey": testAccessKey}), "the selected auth_data lacks secretkey"},
			{"neither", cloud.NewCredentials(map[string]any{"password": testSecretKey}), "the selected auth_data lacks accesskey and secretkey"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.drv.Bind(res, tt.creds)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Bind = %v; want %q", err, tt.want)
				}
				if strings.Contains(err.Error(), testAccessKey) || strings.Contains(err.Error(), testSecretKey) {
					t.Errorf("Bind error reveals a credential: %v", err)
				}
			})
		}
	})
	t.Run("never in errors or logs", func(t *testing.T) {
		// A cloud that echoes the credentials in its error text.
		e.srv.Fail("RunInstances", 1, http.StatusUnauthorized, "AuthFailure",
			"access key "+testAccessKey+" with secret "+testSecretKey+" is not valid")
		p := e.provider(res)
		_, err := p.Create(ctxT(t), newSpec(res, "app"))
		if err == nil || !strings.Contains(err.Error(), "AuthFailure") || !strings.Contains(err.Error(), "[redacted]") {
			t.Fatalf("Create = %v; want the AuthFailure with the values redacted", err)
		}
		t.Logf("error: %v", err)
		if _, err := p.Create(ctxT(t), newSpec(res, "app")); err != nil {
			t.Fatal(err)
		}
		for what, text := range map[string]string{"error": err.Error(), "logs": e.logs.String(), "provider": p.String()} {
			if strings.Contains(text, testAccessKey) || strings.Contains(text, testSecretKey) {
				t.Errorf("%s reveal a credential: %s", what, text)
			}
		}
	})
}

func TestBindCachesProviders(t *testing.T) {
	e := newEnv(t)
	a := e.provider(e.resource())
	if b := e.provider(e.resource("image_id", "ami-other")); a != b {
		t.Error("two resources of one endpoint, region and key got different providers")
	}
	if c := e.provider(e.resource("regionname", "us-east-1")); a == c {
		t.Error("another region got the same provider")
	}
	other := cloud.NewCredentials(map[string]any{"accesskey": testAccessKey, "secretkey": "rotated-secret-value"})
	d, err := e.drv.Bind(e.resource(), other)
	if err != nil {
		t.Fatal(err)
	}
	if d == cloud.Provider(a) {
		t.Error("a rotated secret key got the provider of the old one")
	}
	if _, err := e.drv.Bind(e.resource("flavor_name", "x"), testCreds()); err == nil {
		t.Error("Bind accepted an unknown key")
	}
}

func TestContextEndsCall(t *testing.T) {
	e := newEnv(t)
	res := e.resource()
	e.srv.Stall("RunInstances", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := e.provider(res).Create(ctx, newSpec(res, "app"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create against a stalled endpoint = %v; want the context's deadline", err)
	}
	if cloud.IsRetryable(err) {
		t.Errorf("a call ended by its own context is marked retryable: %v", err)
	}
	if n := e.srv.Calls("RunInstances"); n != 1 {
		t.Errorf("RunInstances was called %d times; the SDK must not retry past the context", n)
	}
}

func TestListFollowsPages(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ListPageSize = 5 })
	ctx := ctxT(t)
	res := e.resource()
	p := e.provider(res)
	want := map[string]bool{}
	for range 12 {
		id, err := p.Create(ctx, newSpec(res, "worker"))
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	got, err := p.List(ctx, map[string]string{cloud.TagNode: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got {
		delete(want, in.ID)
	}
	if len(got) != 12 || len(want) != 0 {
		t.Errorf("List returned %d instances, missing %v; want all 12", len(got), want)
	}
	if n := e.srv.Calls("DescribeInstances"); n != 3 {
		t.Errorf("DescribeInstances was called %d times; want 3 pages of at most 5", n)
	}
}
