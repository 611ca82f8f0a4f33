package dnsserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/skyfleet/skyfleet/internal/events"
	"github.com/skyfleet/skyfleet/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const webDescriptor = `infra_name: web
nodes:
  - name: app
    type: app
    scaling: {min: 1, max: 10}
    variables:
      port: 8080
  - name: lb
    type: lb
    variables:
      app_port: "8443"
  - name: db
    type: db
`

const otherDescriptor = `infra_name: other
variables:
  applicationport: 9000
nodes:
  - name: app
    type: app
`

type fixture struct {
	t   *testing.T
	st  store.Store
	hub *events.Hub
	srv *Server
	reg *prometheus.Registry
}

// newFixture starts a server on 127.0.0.1:0 over a fresh store holding the infrastructures
// "web" (id w1) and "other" (id o1), and stops it when the test ends.
func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{t: t, st: st, hub: events.NewHub(), reg: prometheus.NewRegistry()}
	t.Cleanup(f.hub.Close)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.infra("w1", webDescriptor, t0)
	f.infra("o1", otherDescriptor, t0)

	opts.Addr = "127.0.0.1:0"
	opts.Store = st
	opts.Hub = f.hub
	opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, nil))
	opts.Registerer = f.reg
	if opts.Resync == 0 {
		opts.Resync = time.Hour // events only
	}
	f.srv = New(opts)
	if err := f.srv.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return f
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (f *fixture) update(fn func(tx store.Tx) error) {
	f.t.Helper()
	if err := f.st.Update(context.Background(), fn); err != nil {
		f.t.Fatalf("store update: %v", err)
	}
}

func (f *fixture) infra(id, desc string, created time.Time) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		return tx.PutInfra(&store.InfraRecord{ID: id, Descriptor: desc, Created: created, Targets: map[string]int{}})
	})
	f.hub.Publish(store.Event{InfraID: id, Type: "infrastart"})
}

// set writes an instance and publishes an event about it, as the engine does.
func (f *fixture) set(infra, node, nodeID string, state store.InstanceState, addrs ...string) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		return tx.PutInstance(&store.InstanceRecord{InfraID: infra, Node: node, NodeID: nodeID, State: state, Addresses: addrs})
	})
	f.hub.Publish(store.Event{InfraID: infra, Type: "node" + string(state), Node: node, NodeID: nodeID})
}

// query sends one question over net ("udp" or "tcp").
func (f *fixture) query(network, name string, qtype uint16) *mdns.Msg {
	f.t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, f.srv.Addr().String())
	if err != nil {
		f.t.Fatalf("query %s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	return r
}

// eventually repeats the query until ok accepts the answer, failing after a deadline.
func (f *fixture) eventually(what, name string, qtype uint16, ok func(*mdns.Msg) bool) *mdns.Msg {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := f.query("udp", name, qtype)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s; last answer:\n%v", what, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// values renders the answer section's data, sorted ("A 127.0.0.1", "SRV 8080 x.").
func values(rrs []mdns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *mdns.A:
			out = append(out, "A "+r.A.String())
		case *mdns.AAAA:
			out = append(out, "AAAA "+r.AAAA.String())
		case *mdns.SRV:
			out = append(out, fmt.Sprintf("SRV %d %s", r.Port, r.Target))
		case *mdns.SOA:
			out = append(out, "SOA "+r.Ns)
		case *mdns.OPT:
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

// loaded waits until the server answers from the store.
func (f *fixture) loaded() {
	f.t.Helper()
	f.eventually("first load", "web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return r.Rcode != mdns.RcodeServerFailure })
}

func TestAnswers(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("w1", "app", "a1", store.StateReady, "127.0.0.11", "::1")
	f.set("w1", "app", "a2", store.StateReady, "127.0.0.12")
	f.set("w1", "app", "a3", store.StateDraining, "127.0.0.13")
	f.set("w1", "app", "a4", store.StatePending, "127.0.0.14")
	f.set("w1", "app", "a5", store.StateFailed, "127.0.0.15")
	f.set("w1", "lb", "l1", store.StateReady, "127.0.0.21")
	f.set("o1", "app", "o1a", store.StateReady, "127.0.0.31")
	f.loaded()
	f.eventually("every instance", "app.w1.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return len(r.Answer) == 2 })
	f.eventually("other infrastructure", "app.o1.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return len(r.Answer) == 1 })

	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		answer    []string
		extra     []string
		soaInAuth bool
	}{
		{name: "A of ready instances by infra name", qname: "app.web.skyfleet.", qtype: mdns.TypeA, answer: []string{"A 127.0.0.11", "A 127.0.0.12"}},
		{name: "A by infra id", qname: "app.w1.skyfleet.", qtype: mdns.TypeA, answer: []string{"A 127.0.0.11", "A 127.0.0.12"}},
		{name: "names are case-insensitive", qname: "APP.Web.SkyFleet.", qtype: mdns.TypeA, answer: []string{"A 127.0.0.11", "A 127.0.0.12"}},
		{name: "AAAA of the instance that has one", qname: "app.web.skyfleet.", qtype: mdns.TypeAAAA, answer: []string{"AAAA ::1"}},
		{name: "SRV with the node's port variable and resolvable targets", qname: "app.web.skyfleet.", qtype: mdns.TypeSRV,
			answer: []string{"SRV 8080 a1.app.web.skyfleet.", "SRV 8080 a2.app.web.skyfleet."},
			extra:  []string{"A 127.0.0.11", "A 127.0.0.12", "AAAA ::1"}},
		{name: "SRV port from app_port", qname: "lb.web.skyfleet.", qtype: mdns.TypeSRV, answer: []string{"SRV 8443 l1.lb.web.skyfleet."},
			extra: []string{"A 127.0.0.21"}},
		{name: "SRV port from an infrastructure applicationport", qname: "app.other.skyfleet.", qtype: mdns.TypeSRV,
			answer: []string{"SRV 9000 o1a.app.other.skyfleet."}, extra: []string{"A 127.0.0.31"}},
		{name: "RFC 2782 form gives the same SRV", qname: "_http._tcp.lb.w1.skyfleet.", qtype: mdns.TypeSRV,
			answer: []string{"SRV 8443 l1.lb.w1.skyfleet."}, extra: []string{"A 127.0.0.21"}},
		{name: "SRV target resolves", qname: "a1.app.web.skyfleet.", qtype: mdns.TypeA, answer: []string{"A 127.0.0.11"}},
		{name: "ANY on an instance", qname: "a1.app.web.skyfleet.", qtype: mdns.TypeANY, answer: []string{"A 127.0.0.11", "AAAA ::1"}},
		{name: "draining instance is not a name", qname: "a3.app.web.skyfleet.", qtype: mdns.TypeA, rcode: mdns.RcodeNameError, soaInAuth: true},
		{name: "unknown infrastructure", qname: "app.nope.skyfleet.", qtype: mdns.TypeA, rcode: mdns.RcodeNameError, soaInAuth: true},
		{name: "unknown node", qname: "nope.web.skyfleet.", qtype: mdns.TypeA, rcode: mdns.RcodeNameError, soaInAuth: true},
		{name: "too deep", qname: "x.a1.app.web.skyfleet.", qtype: mdns.TypeA, rcode: mdns.RcodeNameError, soaInAuth: true},
		{name: "node without instances is NODATA", qname: "db.web.skyfleet.", qtype: mdns.TypeA, soaInAuth: true},
		{name: "other type is NODATA", qname: "lb.web.skyfleet.", qtype: mdns.TypeAAAA, soaInAuth: true},
		{name: "TXT is NODATA", qname: "app.web.skyfleet.", qtype: mdns.TypeTXT, soaInAuth: true},
		{name: "infrastructure name exists without records", qname: "web.skyfleet.", qtype: mdns.TypeA, soaInAuth: true},
		{name: "apex SOA", qname: "skyfleet.", qtype: mdns.TypeSOA, answer: []string{"SOA ns.skyfleet."}},
		{name: "outside the zone is refused", qname: "example.com.", qtype: mdns.TypeA, rcode: mdns.RcodeRefused},
		{name: "a zone that only ends like ours is refused", qname: "app.web.notskyfleet.", qtype: mdns.TypeA, rcode: mdns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.query("udp", tt.qname, tt.qtype)
			if r.Rcode != tt.rcode {
				t.Fatalf("rcode = %s, want %s\n%v", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.rcode], r)
			}
			want := tt.answer
			if want == nil {
				want = []string{}
			}
			if got := values(r.Answer); !slices.Equal(got, want) {
				t.Errorf("answer = %q, want %q", got, want)
			}
			if tt.extra != nil {
				if got := values(r.Extra); !slices.Equal(got, tt.extra) {
					t.Errorf("additional = %q, want %q", got, tt.extra)
				}
			}
			if tt.rcode == mdns.RcodeRefused {
				if r.Authoritative {
					t.Error("REFUSED answer claims authority")
				}
				return
			}
			if !r.Authoritative {
				t.Error("answer is not authoritative")
			}
			if tt.soaInAuth {
				if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA || r.Ns[0].Header().Name != Zone {
					t.Errorf("authority = %v, want the zone's SOA", r.Ns)
				} else if soa := r.Ns[0].(*mdns.SOA); soa.Minttl != 5 || soa.Hdr.Ttl != 5 {
					t.Errorf("SOA ttl %d minttl %d, want 5 and 5", soa.Hdr.Ttl, soa.Minttl)
				}
			}
			for _, rr := range slices.Concat(r.Answer, r.Extra) {
				if rr.Header().Rrtype != mdns.TypeOPT && rr.Header().Ttl != 5 {
					t.Errorf("%v: ttl %d, want the default 5", rr, rr.Header().Ttl)
				}
			}
			for _, rr := range r.Answer {
				if rr.Header().Name != tt.qname {
					t.Errorf("owner %q, want the question's name as asked, %q", rr.Header().Name, tt.qname)
				}
			}
		})
	}

	if got := testutil.ToFloat64(f.srv.queries.WithLabelValues("REFUSED")); got < 2 {
		t.Errorf("skyfleet_dns_queries_total{rcode=REFUSED} = %v, want at least 2", got)
	}
}

func TestTTLOption(t *testing.T) {
	f := newFixture(t, Options{TTL: 1500 * time.Millisecond})
	f.set("w1", "app", "a1", store.StateReady, "127.0.0.11")
	r := f.eventually("a1", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return len(r.Answer) == 1 })
	if ttl := r.Answer[0].Header().Ttl; ttl != 2 {
		t.Errorf("ttl = %d, want 2 (1.5s rounded up)", ttl)
	}
}

func TestMembershipChangesReachTheNextAnswers(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("w1", "app", "a1", store.StateReady, "127.0.0.11")
	f.eventually("a1", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool {
		return slices.Equal(values(r.Answer), []string{"A 127.0.0.11"})
	})

	// Scale-up: a pending instance is not published until it is ready.
	f.set("w1", "app", "a2", store.StatePending, "127.0.0.12")
	f.set("w1", "app", "a2", store.StateReady, "127.0.0.12")
	f.eventually("scale-up", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool {
		return slices.Equal(values(r.Answer), []string{"A 127.0.0.11", "A 127.0.0.12"})
	})
	f.eventually("new SRV target", "a2.app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return r.Rcode == mdns.RcodeSuccess })

	// Scale-in: the victim drains; it leaves every answer at once.
	f.set("w1", "app", "a1", store.StateDraining, "127.0.0.11")
	f.eventually("drain", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool {
		return slices.Equal(values(r.Answer), []string{"A 127.0.0.12"})
	})
	r := f.query("udp", "a1.app.web.skyfleet.", mdns.TypeA)
	if r.Rcode != mdns.RcodeNameError {
		t.Errorf("drained instance's own name: rcode %s, want NXDOMAIN", mdns.RcodeToString[r.Rcode])
	}
	r = f.query("udp", "app.web.skyfleet.", mdns.TypeSRV)
	if got := values(r.Answer); !slices.Equal(got, []string{"SRV 8080 a2.app.web.skyfleet."}) {
		t.Errorf("SRV after drain = %q", got)
	}

	// Infrastructure deleted: its names disappear.
	f.update(func(tx store.Tx) error { return tx.DeleteInfra("w1") })
	f.hub.Publish(store.Event{InfraID: "w1", Type: "infradrop"})
	f.eventually("deletion", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return r.Rcode == mdns.RcodeNameError })
}

func TestSharedNameResolvesToTheNewestInfrastructure(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("w1", "app", "a1", store.StateReady, "127.0.0.11")
	newer := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	f.infra("w2", webDescriptor, newer)
	f.set("w2", "app", "b1", store.StateReady, "127.0.0.41")

	f.eventually("the name follows the newer infrastructure", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool {
		return slices.Equal(values(r.Answer), []string{"A 127.0.0.41"})
	})
	r := f.query("udp", "app.w1.skyfleet.", mdns.TypeA)
	if got := values(r.Answer); !slices.Equal(got, []string{"A 127.0.0.11"}) {
		t.Errorf("the older infrastructure by id = %q, want its own instance", got)
	}
}

func TestLargeAnswersTruncateOverUDPAndFitOverTCP(t *testing.T) {
	f := newFixture(t, Options{})
	const n = 60
	f.update(func(tx store.Tx) error {
		for i := range n {
			if err := tx.PutInstance(&store.InstanceRecord{InfraID: "w1", Node: "app", NodeID: fmt.Sprintf("a%02d", i),
				State: store.StateReady, Addresses: []string{fmt.Sprintf("127.0.1.%d", i+1)}}); err != nil {
				return err
			}
		}
		return nil
	})
	f.hub.Publish(store.Event{InfraID: "w1", Type: "nodeready"})
	f.eventually("all instances over TCP", "app.web.skyfleet.", mdns.TypeA, func(*mdns.Msg) bool {
		return len(f.query("tcp", "app.web.skyfleet.", mdns.TypeSRV).Answer) == n
	})

	udp := f.query("udp", "app.web.skyfleet.", mdns.TypeSRV)
	if !udp.Truncated || len(udp.Answer) >= n {
		t.Errorf("UDP answer: truncated %v with %d records, want the TC bit and fewer than %d", udp.Truncated, len(udp.Answer), n)
	}
	tcp := f.query("tcp", "app.web.skyfleet.", mdns.TypeSRV)
	if tcp.Truncated || len(tcp.Answer) != n || len(tcp.Extra) != n {
		t.Errorf("TCP answer: truncated %v, %d answers, %d additional; want all %d of each", tcp.Truncated,
			len(tcp.Answer), len(tcp.Extra), n)
	}
	// A client advertising a larger EDNS0 buffer gets more over UDP.
	m := new(mdns.Msg)
	m.SetQuestion("app.web.skyfleet.", mdns.TypeA)
	m.SetEdns0(4096, false)
	r, _, err := (&mdns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(m, f.srv.Addr().String())
	if err != nil {
		t.Fatalf("EDNS0 query: %v", err)
	}
	if r.Truncated || len(r.Answer) != n || r.IsEdns0() == nil {
		t.Errorf("EDNS0 A answer: truncated %v, %d records, OPT %v; want all %d A records in 1232 bytes", r.Truncated,
			len(r.Answer), r.IsEdns0() != nil, n)
	}
}

func TestServfailBeforeTheFirstRead(t *testing.T) {
	s := New(Options{Addr: "127.0.0.1:0", Store: nopStore{}})
	m := new(mdns.Msg)
	m.SetQuestion("app.web.skyfleet.", mdns.TypeA)
	if r := s.answer(m, false); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode = %s, want SERVFAIL", mdns.RcodeToString[r.Rcode])
	}
}

type nopStore struct{ store.Store }

func TestConfigurationErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{name: "no store", opts: Options{Addr: "127.0.0.1:0"}, want: "new dns server: new ready-set tracker: a store is required"},
		{name: "address without port", opts: Options{Addr: "127.0.0.1", Store: nopStore{}}, want: `dns listen address "127.0.0.1": want host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(tt.opts).Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("port in use", func(t *testing.T) {
		a := New(Options{Addr: "127.0.0.1:0", Store: nopStore{}})
		if err := a.Listen(); err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		err := New(Options{Addr: a.Addr().String(), Store: nopStore{}}).Listen()
		if err == nil || !strings.Contains(err.Error(), "dns listen on "+a.Addr().String()) {
			t.Errorf("Listen on a busy port = %v, want an error naming the address", err)
		}
	})
}

// The server answers many clients at once; run with -race this also checks that answers
// never see a half-built index.
func TestConcurrentQueriesDuringChanges(t *testing.T) {
	f := newFixture(t, Options{})
	f.set("w1", "app", "a0", store.StateReady, "127.0.0.10")
	f.eventually("a0", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return len(r.Answer) == 1 })
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				m := new(mdns.Msg)
				m.SetQuestion("app.web.skyfleet.", mdns.TypeA)
				r, _, err := (&mdns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(m, f.srv.Addr().String())
				if err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
				if r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0 {
					t.Errorf("client %d: rcode %s with %d answers, want at least a0", c, mdns.RcodeToString[r.Rcode], len(r.Answer))
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		f.set("w1", "app", fmt.Sprintf("a%d", i), store.StateReady, fmt.Sprintf("127.0.0.%d", 10+i))
	}
	wg.Wait()
}

// TestDig asks the server with dig, the resolver tool people use to check a DNS setup.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("SKYFLEET_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("dig is required (SKYFLEET_REQUIRE_INTEGRATION is set): %v", err)
		}
		t.Skip("dig is not installed")
	}
	f := newFixture(t, Options{})
	f.set("w1", "app", "a1", store.StateReady, "127.0.0.11")
	f.set("w1", "app", "a2", store.StateReady, "127.0.0.12")
	f.eventually("both instances", "app.web.skyfleet.", mdns.TypeA, func(r *mdns.Msg) bool { return len(r.Answer) == 2 })
	host, port, _ := net.SplitHostPort(f.srv.Addr().String())

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "A over UDP", args: []string{"app.web.skyfleet.", "A"}, want: []string{"127.0.0.11", "127.0.0.12"}},
		{name: "A over TCP", args: []string{"+tcp", "app.web.skyfleet.", "A"}, want: []string{"127.0.0.11", "127.0.0.12"}},
		{name: "SRV", args: []string{"app.web.skyfleet.", "SRV"},
			want: []string{"10 10 8080 a1.app.web.skyfleet.", "10 10 8080 a2.app.web.skyfleet."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"@" + host, "-p", port, "+short", "+time=5", "+tries=1"}, tt.args...)
			out, err := exec.Command(dig, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("dig %v: %v\n%s", args, err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			sort.Strings(lines)
			if !slices.Equal(lines, tt.want) {
				t.Errorf("dig %v = %q, want %q", tt.args, lines, tt.want)
			}
		})
	}

	out, err := exec.Command(dig, "@"+host, "-p", port, "+time=5", "+tries=1", "nope.web.skyfleet.", "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "status: NXDOMAIN") || !strings.Contains(string(out), "flags: qr aa") {
		t.Errorf("dig of an unknown name: want an authoritative NXDOMAIN\n%s", out)
	}
}
