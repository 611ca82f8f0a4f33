package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/skyfleet/skyfleet/internal/registry/readyset"
	"github.com/skyfleet/skyfleet/internal/store"
)

// Zone is the zone the server is authoritative for.
const Zone = "skyfleet."

// DefaultTTL is the TTL of every answer unless Options.TTL says otherwise.
const DefaultTTL = 5 * time.Second

// shutdownGrace bounds how long Run waits for in-flight TCP queries at shutdown.
const shutdownGrace = 2 * time.Second

// Options configures New.
type Options struct {
	// Addr is the host:port the server listens on, over both UDP and TCP (the same port).
	// With port 0 the system picks a free port; Addr() tells which.
	Addr string
	// Store is where infrastructures and instances are read from (required).
	Store store.Store
	// Hub tells the server which infrastructures changed (an *events.Hub); nil leaves it
	// on the periodic resync only.
	Hub readyset.Subscriber
	// Logger receives the server's messages; nil discards them.
	Logger *slog.Logger
	// TTL is the TTL of every record and of negative answers, in whole seconds (rounded
	// up); zero or less means DefaultTTL.
	TTL time.Duration
	// Resync is how often the in-memory copy is rebuilt from the whole store even without
	// events (default 30s).
	Resync time.Duration
	// Registerer receives the server's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Server answers DNS queries for Zone from the ready instances in the store.
type Server struct {
	addr    string
	log     *slog.Logger
	ttl     uint32
	tracker *readyset.Tracker
	err     error // from New, returned by Listen and Run

	zone atomic.Pointer[zone]

	queries *prometheus.CounterVec

	mu      sync.Mutex
	udp     net.PacketConn
	tcp     net.Listener
	started bool
}

// New returns a server configured by opts. It binds nothing until Listen or Run; a
// configuration error (no store, metrics already registered) is returned by them.
func New(opts Options) *Server {
	s := &Server{addr: opts.Addr, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "dns")
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s.ttl = uint32((ttl + time.Second - 1) / time.Second)
	s.tracker, s.err = readyset.New(readyset.Options{Store: opts.Store, Hub: opts.Hub, Logger: s.log, Resync: opts.Resync})
	if s.err != nil {
		s.err = fmt.Errorf("new dns server: %w", s.err)
		return s
	}
	s.queries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyfleet_dns_queries_total",
		Help: "DNS queries answered, by response code (NOERROR also counts empty answers).",
	}, []string{"rcode"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.queries); err != nil {
			s.err = fmt.Errorf("new dns server: register metrics: %w", err)
		}
	}
	return s
}

// Listen binds the UDP socket and the TCP listener on Options.Addr, so that a bad address
// or a busy port is reported before Run and a port 0 is resolved (see Addr). Run calls it
// when it has not been called. A server that listened but never runs must be closed.
func (s *Server) Listen() error {
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp != nil {
		return nil
	}
	host, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		return fmt.Errorf("dns listen address %q: want host:port: %w", s.addr, err)
	}
	// With port 0, UDP picks the port and TCP must get the same one; a port taken for TCP
	// only is rare, so a few tries suffice.
	tries := 1
	if port == "0" {
		tries = 10
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", s.addr)
		if err != nil {
			return fmt.Errorf("dns listen on %s/udp: %w", s.addr, err)
		}
		p := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err != nil {
			_ = pc.Close()
			if i+1 < tries {
				continue
			}
			return fmt.Errorf("dns listen on %s/tcp: %w", net.JoinHostPort(host, p), err)
		}
		s.udp, s.tcp = pc, ln
		return nil
	}
}

// Addr returns the bound address (UDP; TCP listens on the same port), or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// Close releases the sockets of a server that listened but is not running; Run releases
// them itself when it returns.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.udp == nil {
		return nil
	}
	err := errors.Join(s.udp.Close(), s.tcp.Close())
	s.udp, s.tcp = nil, nil
	return err
}

// Run listens (unless Listen was called), keeps the in-memory copy of the ready instances
// current, and answers queries over UDP and TCP until ctx is done; then it stops both
// servers (waiting up to 2s for TCP queries in flight) and returns nil. Run may be called
// once. It returns an error when it cannot listen or a server stops by itself.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("run dns server: already running")
	}
	s.started = true
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()
	defer func() {
		// The UDP socket is closed by the server's shutdown; close both again in case a
		// server never started.
		_ = udp.Close()
		_ = tcp.Close()
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.tracker.Run(gctx) })
	g.Go(func() error { s.follow(gctx); return nil })
	s.serve(g, gctx, &mdns.Server{PacketConn: udp, Handler: handler{s: s}}, "udp", udp.LocalAddr())
	s.serve(g, gctx, &mdns.Server{Listener: tcp, Handler: handler{s: s, tcp: true}}, "tcp", tcp.Addr())
	s.log.Info("dns serving", "addr", udp.LocalAddr().String(), "zone", Zone, "ttl_seconds", s.ttl)
	return g.Wait()
}

// serve runs srv in g and stops it when gctx is done.
func (s *Server) serve(g *errgroup.Group, gctx context.Context, srv *mdns.Server, proto string, addr net.Addr) {
	started := make(chan struct{})
	exited := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	g.Go(func() error {
		err := srv.ActivateAndServe()
		close(exited)
		if gctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("serve dns over %s on %s: %w", proto, addr, err)
	})
	g.Go(func() error {
		<-gctx.Done()
		select {
		case <-started:
		case <-exited:
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.ShutdownContext(sctx); err != nil {
			s.log.Warn("dns shutdown did not finish in time", "proto", proto, "error", err)
		}
		return nil
	})
}

// follow rebuilds the lookup index each time the tracker publishes a new Set.
func (s *Server) follow(ctx context.Context) {
	for {
		set, next := s.tracker.Current()
		if set != nil {
			s.zone.Store(buildZone(set))
		}
		select {
		case <-ctx.Done():
			return
		case <-next:
		}
	}
}

// handler answers one transport's queries.
type handler struct {
	s   *Server
	tcp bool
}

// ServeDNS answers req.
func (h handler) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	m := h.s.answer(req, h.tcp)
	if err := w.WriteMsg(m); err != nil {
		h.s.log.Debug("write dns answer", "error", err)
	}
}
