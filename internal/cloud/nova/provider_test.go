package nova

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
	"github.com/skyfleet/skyfleet/internal/cloud/cloudinit"
	"github.com/skyfleet/skyfleet/internal/cloud/nova/novatest"
)

const (
	testUser     = "demo"
	testPassword = "s3cret-Passw0rd!"
	testProject  = "p-0123"
	testAppID    = "ac-4567"
	testAppSec   = "app-credential-secret-value"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

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

type env struct {
	t     *testing.T
	fake  *novatest.Fake
	clock *fakeClock
	logs  *syncBuffer
	opts  Options
	drv   *Driver
}

func newEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, logs: &syncBuffer{}}
	e.fake = novatest.NewT(t, novatest.Options{Clock: e.clock.Now})
	e.fake.AddUser(novatest.User{Name: testUser, Password: testPassword, Domain: "Default", ProjectID: testProject})
	e.fake.AddAppCredential(novatest.AppCredential{ID: testAppID, Secret: testAppSec, ProjectID: testProject})
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	e.opts = Options{
		Logger:             slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient:         &http.Client{Transport: tr, Timeout: 20 * time.Second},
		FloatingIPAttempts: 5,
		Clock:              e.clock.Now,
	}
	for _, m := range mod {
		m(&e.opts)
	}
	e.drv = NewDriver(e.opts)
	t.Cleanup(func() { t.Log(e.logs.String()) })
	return e
}

// restart returns a fresh driver on the same fake, as a restarted orchestrator has.
func (e *env) restart() *Driver { return NewDriver(e.opts) }

func (e *env) resource(kv ...any) map[string]any {
	return with(map[string]any{
		"type": "nova", "endpoint": e.fake.URL + "/identity", "image_id": "img-ubuntu",
		"flavor_name": "m1.small", "project_id": testProject,
	}, kv...)
}

func passwordCreds() *cloud.Credentials {
	return cloud.NewCredentials(map[string]any{"username": testUser, "password": testPassword})
}

func (e *env) provider(d *Driver, res map[string]any) *Provider {
	e.t.Helper()
	p, err := d.Bind(res, passwordCreds())
	if err != nil {
		e.t.Fatalf("Bind: %v", err)
	}
	return p.(*Provider)
}

var tokenSeq int

func newSpec(res map[string]any, node string) cloud.InstanceSpec {
	tokenSeq++
	token := fmt.Sprintf("7d1e0c55-0000-4000-8000-%012d", tokenSeq)
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

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	return v
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name  string
		creds *cloud.Credentials
		res   []any
		check func(t *testing.T, body map[string]any)
	}{
		{"password", passwordCreds(), nil, func(t *testing.T, b map[string]any) {
			if m := fmt.Sprint(dig(b, "auth", "identity", "methods")); m != "[password]" {
				t.Errorf("methods = %s", m)
			}
			if dig(b, "auth", "identity", "password", "user", "name") != testUser || dig(b, "auth", "identity", "password", "user", "password") != testPassword ||
				dig(b, "auth", "identity", "password", "user", "domain", "name") != "Default" {
				t.Errorf("password user = %v", dig(b, "auth", "identity", "password", "user"))
			}
			if dig(b, "auth", "scope", "project", "id") != testProject {
				t.Errorf("scope = %v; want project %s", dig(b, "auth", "scope"), testProject)
			}
		}},
		{"password in another domain", passwordCreds(), []any{"user_domain_name", "Users"}, func(t *testing.T, b map[string]any) {
			if d := dig(b, "auth", "identity", "password", "user", "domain", "name"); d != "Users" {
				t.Errorf("user domain = %v, want Users", d)
			}
		}},
		{"application credential", cloud.NewCredentials(map[string]any{"type": "application_credential", "id": testAppID, "secret": testAppSec}), nil,
			func(t *testing.T, b map[string]any) {
				if m := fmt.Sprint(dig(b, "auth", "identity", "methods")); m != "[application_credential]" {
					t.Errorf("methods = %s", m)
				}
				if dig(b, "auth", "identity", "application_credential", "id") != testAppID || dig(b, "auth", "identity", "application_credential", "secret") != testAppSec {
					t.Errorf("application credential = %v", dig(b, "auth", "identity", "application_credential"))
				}
				if _, scoped := b["auth"].(map[string]any)["scope"]; scoped {
					t.Error("an application credential request carries a scope; Keystone refuses that")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if len(tt.res) > 0 {
				e.fake.AddUser(novatest.User{Name: testUser, Password: testPassword, Domain: "Users", ProjectID: testProject})
			}
			res := e.resource(tt.res...)
			p, err := e.drv.Bind(res, tt.creds)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.(*Provider).List(ctxT(t), nil); err != nil {
				t.Fatalf("List after authentication: %v", err)
			}
			reqs := e.fake.TokenRequests()
			if len(reqs) != 1 {
				t.Fatalf("%d token requests, want 1", len(reqs))
			}
			tt.check(t, reqs[0])
		})
	}
}

func TestCredentialErrors(t *testing.T) {
	e := newEnv(t)
	res := e.resource()
	tests := []struct {
		name  string
		creds *cloud.Credentials
		want  string
	}{
		{"none selected", nil, "no credentials were selected"},
		{"no password", cloud.NewCredentials(map[string]any{"username": testUser}), "the selected auth_data lacks password"},
		{"nothing usable", cloud.NewCredentials(map[string]any{"accesskey": testPassword}), "lacks username and password"},
		{"application credential without secret", cloud.NewCredentials(map[string]any{"type": "application_credential", "id": testAppID}),
			"(type: application_credential) lacks secret"},
		{"VOMS", cloud.NewCredentials(map[string]any{"type": "voms", "proxy": testPassword}), `auth_data type "voms" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.drv.Bind(res, tt.creds)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Bind = %v; want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("Bind error reveals a credential: %v", err)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		wrong := cloud.NewCredentials(map[string]any{"username": testUser, "password": "wrong-password-value"})
		p, err := e.drv.Bind(res, wrong)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Create(ctxT(t), newSpec(res, "app"))
		if err == nil || cloud.IsRetryable(err) || !strings.Contains(err.Error(), "authenticate with keystone") {
			t.Fatalf("Create with a wrong password = %v; want a permanent authentication error", err)
		}
		t.Logf("error: %v", err)
		for what, text := range map[string]string{"error": err.Error(), "logs": e.logs.String(), "provider": fmt.Sprint(p)} {
			if strings.Contains(text, "wrong-password-value") || strings.Contains(text, testPassword) {
				t.Errorf("%s reveal a credential: %s", what, text)
			}
		}
	})
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := e.resource("key_name", "ops", "security_groups", []any{"default", "web"}, "network_id", "net-private")
	p := e.provider(e.drv, res)
	spec := newSpec(res, "app")
	spec.UserData = "#cloud-config\nruncmd:\n  - echo hello\n"
	id, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	s, ok := e.fake.Server(id)
	if !ok {
		t.Fatalf("the fake has no server %s", id)
	}
	if s.Name != "skyfleet-demo-infra-01-app-"+spec.Token[:8] || s.ImageRef != "img-ubuntu" || s.FlavorRef != "2" || s.KeyName != "ops" ||
		strings.Join(s.SecurityGroups, ",") != "default,web" || strings.Join(s.Networks, ",") != "net-private" {
		t.Errorf("server created as %+v", s)
	}
	if s.UserData != spec.UserData || s.RawUserData != base64.StdEncoding.EncodeToString([]byte(spec.UserData)) {
		t.Errorf("user data = %q (raw %q)", s.UserData, s.RawUserData)
	}
	for k, v := range spec.Tags {
		if s.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, s.Metadata[k], v)
		}
	}
	if _, ok := s.Metadata[MetaFloatingIP]; ok {
		t.Error("a server without floating_ip asks for one in its metadata")
	}

	got, err := p.Describe(ctx, id)
	if err != nil || got.State != cloud.StatePending || got.Token != spec.Token || got.Address() != s.FixedIP {
		t.Errorf("Describe while building = %+v, %v", got, err)
	}
	e.fake.SetStatus(id, "ACTIVE", "")
	got, err = p.Describe(ctx, id)
	if err != nil || got.State != cloud.StateRunning || got.Address() != s.FixedIP || got.PrivateAddress != s.FixedIP || !got.Created.Equal(e.clock.Now()) {
		t.Errorf("Describe when active = %+v, %v", got, err)
	}
	if n := e.fake.Calls("POST /network/v2.0/floatingips"); n != 0 {
		t.Errorf("%d floating IPs were allocated for a server that asked for none", n)
	}

	if err := p.Destroy(ctx, id); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if got, err := p.Describe(ctx, id); err != nil || got.State != cloud.StateGone {
		t.Errorf("Describe after Destroy = %+v, %v; want gone", got, err)
	}
	if err := p.Destroy(ctx, id); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if n := len(e.fake.TokenRequests()); n != 1 {
		t.Errorf("%d token requests; the token should be reused", n)
	}
}

func TestIdempotentCreate(t *testing.T) {
	t.Run("repeated", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource("server_name", "fixed-name")
		p := e.provider(e.drv, res)
		spec := newSpec(res, "app")
		id, err := p.Create(ctxT(t), spec)
		if err != nil {
			t.Fatal(err)
		}
		// The same node id after a restart: a new provider finds the server by metadata.
		again, err := e.provider(e.restart(), res).Create(ctxT(t), spec)
		if err != nil || again != id {
			t.Fatalf("repeated Create = %s, %v; want %s", again, err, id)
		}
		if n := e.fake.Calls("POST /compute/v2.1/servers"); n != 1 {
			t.Errorf("%d server creates, want 1", n)
		}
	})
	t.Run("lost response", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource()
		p := e.provider(e.drv, res)
		spec := newSpec(res, "app")
		e.fake.LoseCreateResponses(1)
		id, err := p.Create(ctxT(t), spec)
		if err != nil {
			t.Fatalf("Create with a lost response: %v", err)
		}
		all := e.fake.Servers()
		if len(all) != 1 || all[0].ID != id {
			t.Errorf("the fake holds %d servers; want exactly the one returned", len(all))
		}
		if again, err := p.Create(ctxT(t), spec); err != nil || again != id {
			t.Errorf("a later retry = %s, %v; want %s", again, err, id)
		}
		if n := len(e.fake.Servers()); n != 1 {
			t.Errorf("the fake holds %d servers after the retry", n)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource()
		p := e.provider(e.drv, res)
		spec := newSpec(res, "app")
		var wg sync.WaitGroup
		ids := make([]string, 4)
		errs := make([]error, 4)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], errs[i] = p.Create(ctxT(t), spec)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if n := len(e.fake.Servers()); n != 1 {
			t.Errorf("4 concurrent creates with one node id made %d servers", n)
		}
	})
}

func TestBootFromVolume(t *testing.T) {
	tests := []struct {
		name          string
		res           []any
		deleteWithVM  bool
		bootsFromDisk bool
	}{
		{"volume deleted with the server", []any{"volume_size", 20}, true, false},
		{"persistent volume", []any{"volume_size", 20, "volume_persist", true}, false, false},
		{"image", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.resource(tt.res...)
			if _, err := e.provider(e.drv, res).Create(ctxT(t), newSpec(res, "db")); err != nil {
				t.Fatal(err)
			}
			body := e.fake.CreateRequests()[0]
			bdm, _ := body["block_device_mapping_v2"].([]any)
			if tt.bootsFromDisk {
				if bdm != nil || body["imageRef"] != "img-ubuntu" {
					t.Errorf("create body = %v; want imageRef and no block devices", body)
				}
				return
			}
			if body["imageRef"] != "" || len(bdm) != 1 {
				t.Fatalf("create body = %v; want an empty imageRef and one block device", body)
			}
			want := map[string]any{"boot_index": float64(0), "uuid": "img-ubuntu", "source_type": "image", "destination_type": "volume",
				"volume_size": float64(20), "delete_on_termination": tt.deleteWithVM}
			got := bdm[0].(map[string]any)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("block device %s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestStateMapping(t *testing.T) {
	e := newEnv(t)
	res := e.resource()
	p := e.provider(e.drv, res)
	id, err := p.Create(ctxT(t), newSpec(res, "app"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		status, fault string
		want          cloud.State
		detail        string
	}{
		{"BUILD", "", cloud.StatePending, ""},
		{"REBUILD", "", cloud.StatePending, ""},
		{"RESIZE", "", cloud.StatePending, ""},
		{"VERIFY_RESIZE", "", cloud.StatePending, ""},
		{"MIGRATING", "", cloud.StatePending, ""},
		{"ACTIVE", "", cloud.StateRunning, ""},
		{"ERROR", "No valid host was found.", cloud.StateFailed, "ERROR: No valid host was found."},
		{"DELETED", "", cloud.StateGone, "DELETED"},
		{"SOFT_DELETED", "", cloud.StateGone, "SOFT_DELETED"},
		{"SHUTOFF", "", cloud.StateStopped, "SHUTOFF"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			e.fake.SetStatus(id, tt.status, tt.fault)
			got, err := p.Describe(ctxT(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.want || got.Detail != tt.detail {
				t.Errorf("Nova %s → %s (%q), want %s (%q)", tt.status, got.State, got.Detail, tt.want, tt.detail)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		e.fake.SetStatus(id, "UNKNOWN", "")
		if _, err := p.Describe(ctxT(t), id); err == nil || !strings.Contains(err.Error(), `unknown server status "UNKNOWN"`) {
			t.Errorf("Describe of an unknown status = %v", err)
		}
	})
	t.Run("never existed", func(t *testing.T) {
		if got, err := p.Describe(ctxT(t), "no-such-server"); err != nil || got.State != cloud.StateGone {
			t.Errorf("Describe of a missing server = %+v, %v; want gone", got, err)
		}
	})
}

func TestFloatingIP(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.fake.AddNetwork(novatest.Network{ID: "net-ext2", Name: "ext2", External: true})
	res := e.resource("floating_ip", true, "floating_ip_pool", "ext2")
	p := e.provider(e.drv, res)
	id, err := p.Create(ctx, newSpec(res, "lb"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Describe(ctx, id); got.State != cloud.StatePending {
		t.Errorf("building server = %s", got.State)
	}
	if n := e.fake.Calls("POST /network/v2.0/floatingips"); n != 0 {
		t.Errorf("a floating IP was allocated before the server was ACTIVE")
	}
	e.fake.SetStatus(id, "ACTIVE", "")
	got, err := p.Describe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	fips := e.fake.FloatingIPs()
	s, _ := e.fake.Server(id)
	if len(fips) != 1 || fips[0].NetworkID != "net-ext2" || fips[0].PortID != s.PortID || fips[0].Description != FloatingIPDescription(id) {
		t.Fatalf("floating IPs = %+v; want one from ext2 on port %s", fips, s.PortID)
	}
	if got.State != cloud.StateRunning || got.Address() != fips[0].Address || got.PrivateAddress != s.FixedIP {
		t.Errorf("Describe after association = %+v; want running with the floating address first", got)
	}
	// Nova now lists the floating address itself; nothing more is allocated.
	got, _ = p.Describe(ctx, id)
	if got.Address() != fips[0].Address || strings.Join(got.Addresses, ",") != fips[0].Address+","+s.FixedIP {
		t.Errorf("addresses = %v", got.Addresses)
	}
	if n := e.fake.Calls("POST /network/v2.0/floatingips"); n != 1 {
		t.Errorf("%d floating IP allocations, want 1", n)
	}
	if err := p.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if fips := e.fake.FloatingIPs(); len(fips) != 0 {
		t.Errorf("floating IPs left after Destroy: %+v", fips)
	}
}

func TestFloatingIPFailures(t *testing.T) {
	t.Run("fails twice then succeeds", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxT(t)
		res := e.resource("floating_ip", "yes") // no pool: the first external network
		p := e.provider(e.drv, res)
		id, err := p.Create(ctx, newSpec(res, "lb"))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.SetStatus(id, "ACTIVE", "")
		e.fake.Fail(novatest.FaultFloatingIPCreate, 2, http.StatusConflict, "No more IP addresses available on network net-public.")

		got, _ := p.Describe(ctx, id)
		if got.State != cloud.StatePending || !strings.Contains(got.Detail, "floating IP: attempt 1 of 5 failed") ||
			!strings.Contains(got.Detail, "No more IP addresses available") || !strings.Contains(got.Detail, "next attempt in 2s") {
			t.Fatalf("after the first failure: %+v", got)
		}
		// Not due yet: no call is made.
		calls := e.fake.Calls("POST /network/v2.0/floatingips")
		got, _ = p.Describe(ctx, id)
		if got.State != cloud.StatePending || e.fake.Calls("POST /network/v2.0/floatingips") != calls {
			t.Errorf("an attempt was made before its backoff passed: %+v", got)
		}
		e.clock.Advance(2 * time.Second)
		got, _ = p.Describe(ctx, id)
		if !strings.Contains(got.Detail, "attempt 2 of 5 failed") || !strings.Contains(got.Detail, "next attempt in 4s") {
			t.Fatalf("after the second failure: %+v", got)
		}
		e.clock.Advance(4 * time.Second)
		got, _ = p.Describe(ctx, id)
		fips := e.fake.FloatingIPs()
		if got.State != cloud.StateRunning || len(fips) != 1 || got.Address() != fips[0].Address || fips[0].NetworkID != "net-public" {
			t.Errorf("after the third attempt: %+v, floating IPs %+v", got, fips)
		}
	})
	t.Run("permanent failure", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.FloatingIPAttempts = 3 })
		ctx := ctxT(t)
		res := e.resource("floating_ip", true, "floating_ip_pool", "public")
		p := e.provider(e.drv, res)
		id, err := p.Create(ctx, newSpec(res, "lb"))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.SetStatus(id, "ACTIVE", "")
		e.fake.Fail(novatest.FaultFloatingIPAssociate, 100, http.StatusInternalServerError, "Floating IP setup failed")
		var got cloud.Instance
		for i := range 3 {
			got, err = p.Describe(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if i < 2 && got.State != cloud.StatePending {
				t.Fatalf("attempt %d: %+v; want pending", i+1, got)
			}
			e.clock.Advance(time.Minute)
		}
		if got.State != cloud.StateFailed || !strings.Contains(got.Detail, "floating IP: gave up after 3 attempts") || !strings.Contains(got.Detail, "Floating IP setup failed") {
			t.Fatalf("after the bound: %+v; want failed", got)
		}
		if got, _ := p.Describe(ctx, id); got.State != cloud.StateFailed {
			t.Errorf("a failed association came back as %s", got.State)
		}
		// One floating IP was allocated and reused by every attempt; Destroy releases it.
		if n := len(e.fake.FloatingIPs()); n != 1 {
			t.Errorf("%d floating IPs allocated, want 1 reused by every attempt", n)
		}
		if err := p.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
		if fips := e.fake.FloatingIPs(); len(fips) != 0 {
			t.Errorf("floating IPs left after Destroy: %+v", fips)
		}
	})
	t.Run("unknown pool", func(t *testing.T) {
		e := newEnv(t)
		res := e.resource("floating_ip", true, "floating_ip_pool", "nope")
		p := e.provider(e.drv, res)
		id, err := p.Create(ctxT(t), newSpec(res, "lb"))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.SetStatus(id, "ACTIVE", "")
		got, _ := p.Describe(ctxT(t), id)
		if got.State != cloud.StatePending || !strings.Contains(got.Detail, `resource.floating_ip_pool "nope" is not an external network of the project (external networks: [public])`) {
			t.Errorf("Describe = %+v", got)
		}
	})
	t.Run("restart between allocation and association", func(t *testing.T) {
		e := newEnv(t)
		ctx := ctxT(t)
		res := e.resource("floating_ip", true)
		p := e.provider(e.drv, res)
		id, err := p.Create(ctx, newSpec(res, "lb"))
		if err != nil {
			t.Fatal(err)
		}
		e.fake.SetStatus(id, "ACTIVE", "")
		e.fake.Fail(novatest.FaultFloatingIPAssociate, 1, http.StatusInternalServerError, "Floating IP setup failed")
		if got, _ := p.Describe(ctx, id); got.State != cloud.StatePending {
			t.Fatalf("Describe = %+v", got)
		}
		// A restarted orchestrator finds the allocated floating IP and associates it.
		p2 := e.provider(e.restart(), res)
		got, err := p2.Describe(ctx, id)
		if err != nil || got.State != cloud.StateRunning {
			t.Fatalf("Describe after restart = %+v, %v", got, err)
		}
		if n := len(e.fake.FloatingIPs()); n != 1 {
			t.Errorf("%d floating IPs after the restart, want the one allocated before", n)
		}
		if err := p2.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := len(e.fake.FloatingIPs()); n != 0 {
			t.Errorf("%d floating IPs left after Destroy", n)
		}
	})
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := e.resource()
	p := e.provider(e.drv, res)
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
	e.fake.AddServer(novatest.Server{Name: "foreign", Status: "ACTIVE", FlavorRef: "2", ImageRef: "x"})
	e.fake.SetStatus(a3, "SOFT_DELETED", "")
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
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		res      map[string]any
		userData string
		want     string
		is       error
	}{
		{"unknown flavor", e.resource("flavor_name", "m9.huge"), "", `resource.flavor_name "m9.huge" is not a flavor of project p-0123 (flavors: [m1.small m1.tiny])`, nil},
		{"user data too large", e.resource(), "#!/bin/sh\n" + strings.Repeat("x", cloudinit.NovaLimit), "", cloudinit.ErrTooLarge},
		{"bad resource", e.resource("flavor", "x"), "", "resource.flavor: unknown key", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := newSpec(tt.res, "app")
			spec.UserData = tt.userData
			_, err := e.provider(e.drv, e.resource()).Create(ctxT(t), spec)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Create = %v; want %v", err, tt.is)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Create = %v\nwant %s", err, tt.want)
			}
		})
	}
	if n := len(e.fake.Servers()); n != 0 {
		t.Errorf("%d servers were created by failing creates", n)
	}
}

func TestMetadataLimit(t *testing.T) {
	e := newEnv(t)
	res := e.resource()
	spec := newSpec(res, "app")
	spec.Tags["owner"] = strings.Repeat("x", 256)
	_, err := e.provider(e.drv, res).Create(ctxT(t), spec)
	if err == nil || !strings.Contains(err.Error(), `tag "owner": Nova metadata keys and values are limited to 255 bytes`) {
		t.Errorf("Create with a 256-byte tag value = %v", err)
	}
	if n := e.fake.Calls("POST /compute/v2.1/servers"); n != 0 {
		t.Errorf("%d server creates for metadata Nova refuses", n)
	}
}

func TestTokenRenewal(t *testing.T) {
	e := newEnv(t)
	res := e.resource()
	p := e.provider(e.drv, res)
	id, err := p.Create(ctxT(t), newSpec(res, "app"))
	if err != nil {
		t.Fatal(err)
	}
	e.fake.ExpireTokens()
	if got, err := p.Describe(ctxT(t), id); err != nil || got.State != cloud.StatePending {
		t.Fatalf("Describe after the token expired = %+v, %v; want the server, through a new token", got, err)
	}
	if n := len(e.fake.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2 (the first and one renewal)", n)
	}
}
