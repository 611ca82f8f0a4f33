package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Pinger sends one ICMP echo request to addr and waits for the reply. It returns nil when a
// reply came, or an error whose message says why not ("no reply", "ping: unknown host").
// Implementations are safe for concurrent use and stop waiting when ctx is done.
type Pinger interface {
	Ping(ctx context.Context, addr string) error
}

// DefaultPingWait is how long one ping waits for its reply, as Occopus' `ping -W 1`.
const DefaultPingWait = time.Second

// errNoReply is the error of a ping that got no answer in time.
var errNoReply = errors.New("no reply")

// errSocket marks an ICMP socket that could not be opened (no privilege, no IPv6), so that
// AutoPinger may fall back to the ping binary.
var errSocket = errors.New("cannot open icmp socket")

// checkAddr refuses addresses that the ping binary would read as an option.
func checkAddr(addr string) error {
	if addr == "" || strings.HasPrefix(addr, "-") || strings.ContainsAny(addr, " \t\n") {
		return fmt.Errorf("%q is not an address", addr)
	}
	return nil
}

// ExecPinger runs the system ping binary, exactly as Occopus does: `ping -c 1 -W 1 ADDR`.
// It needs no privilege of its own (the binary has it) but costs a process per check.
type ExecPinger struct {
	// Path is the ping binary; "" looks up "ping" in PATH.
	Path string
}

var _ Pinger = ExecPinger{}

// Ping runs ping once and reports its exit status.
func (p ExecPinger) Ping(ctx context.Context, addr string) error {
	if err := checkAddr(addr); err != nil {
		return err
	}
	path := p.Path
	if path == "" {
		path = "ping"
	}
	cmd := exec.CommandContext(ctx, path, "-c", "1", "-W", "1", addr)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		// iputils: 1 = no reply, 2 = other error (with a message on stderr).
		return errNoReply
	}
	if msg := lastLine(out); msg != "" {
		return errors.New(msg)
	}
	return fmt.Errorf("run %s: %w", path, err)
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ICMPPinger pings from inside the process with golang.org/x/net/icmp. With Privileged false
// it uses an unprivileged ICMP datagram socket, which Linux allows to groups listed in the
// net.ipv4.ping_group_range sysctl; with Privileged true a raw ICMP socket, which needs root
// or CAP_NET_RAW. Each Ping opens its own socket and matches the reply by sequence number,
// a random payload and the peer address, so concurrent pings do not confuse each other.
type ICMPPinger struct {
	Privileged bool
	// Wait bounds the wait for the reply (default DefaultPingWait); ctx may end it sooner.
	Wait time.Duration
	// Resolver resolves host names; nil uses net.DefaultResolver.
	Resolver *net.Resolver

	seq atomic.Uint32
}

var _ Pinger = (*ICMPPinger)(nil)

// network returns the socket network and listen address for an address family.
func (p *ICMPPinger) network(v6 bool) (network, laddr string) {
	switch {
	case !v6 && p.Privileged:
		return "ip4:icmp", "0.0.0.0"
	case !v6:
		return "udp4", "0.0.0.0"
	case p.Privileged:
		return "ip6:ipv6-icmp", "::"
	default:
		return "udp6", "::"
	}
}

// Ping sends one echo request to addr (an IP or a host name) and waits for its reply.
func (p *ICMPPinger) Ping(ctx context.Context, addr string) error {
	if err := checkAddr(addr); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ip, err := p.resolve(ctx, addr)
	if err != nil {
		return err
	}
	v6 := !ip.Is4()
	network, laddr := p.network(v6)
	conn, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return fmt.Errorf("%w (%s): %w", errSocket, network, err)
	}
	defer func() { _ = conn.Close() }()

	wait := p.Wait
	if wait <= 0 {
		wait = DefaultPingWait
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	// Wake a blocked read at once when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var token [8]byte
	_, _ = rand.Read(token[:])
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	seq := int(p.seq.Add(1) & 0xffff)
	var reqType, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1 // ICMP for IPv4
	if v6 {
		reqType, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	msg := icmp.Message{Type: reqType, Body: &icmp.Echo{
		ID:   int(binary.BigEndian.Uint16(idb[:])), // a datagram socket's kernel replaces it
		Seq:  seq,
		Data: token[:],
	}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return fmt.Errorf("ping %s: %w", addr, err)
	}
	var dst net.Addr = &net.UDPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	if p.Privileged {
		dst = &net.IPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	}
	if _, err := conn.WriteTo(wb, dst); err != nil {
		return fmt.Errorf("ping %s: send: %w", addr, pingReason(ctx, err))
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			return pingReason(ctx, err)
		}
		if peerIP(peer) != ip.Unmap() {
			continue
		}
		rm, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || rm.Type != replyType {
			continue // e.g. our own request seen on loopback by a raw socket
		}
		echo, ok := rm.Body.(*icmp.Echo)
		if !ok || echo.Seq != seq || !bytes.Equal(echo.Data, token[:]) {
			continue
		}
		return nil
	}
}

func (p *ICMPPinger) resolve(ctx context.Context, addr string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip.Unmap(), nil
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", addr)
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("unknown host %s", addr)
	}
	return ips[0].Unmap(), nil
}

func peerIP(a net.Addr) netip.Addr {
	var ip net.IP
	switch x := a.(type) {
	case *net.UDPAddr:
		ip = x.IP
	case *net.IPAddr:
		ip = x.IP
	}
	out, _ := netip.AddrFromSlice(ip)
	return out.Unmap()
}

// pingReason turns a read or write error into the reason a user reads.
func pingReason(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errNoReply
	}
	return err
}

// AutoPinger chooses how to ping on first use and sticks to it: an unprivileged ICMP
// datagram socket when net.ipv4.ping_group_range admits the process, else a raw ICMP socket
// when the process may open one (root or CAP_NET_RAW), else the system ping binary. When an
// in-process socket cannot be opened for one address family (say IPv6), that ping falls
// back to the binary if there is one.
type AutoPinger struct {
	primary  Pinger
	fallback Pinger // nil when there is no ping binary
	method   string
}

var _ Pinger = (*AutoPinger)(nil)

// NewAutoPinger probes the machine and logs the method chosen.
func NewAutoPinger(logger *slog.Logger) *AutoPinger {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &AutoPinger{}
	if path, err := exec.LookPath("ping"); err == nil {
		a.fallback = ExecPinger{Path: path}
	}
	switch {
	case canListen("udp4"):
		a.primary, a.method = &ICMPPinger{}, "icmp-datagram"
	case canListen("ip4:icmp"):
		a.primary, a.method = &ICMPPinger{Privileged: true}, "icmp-raw"
	case a.fallback != nil:
		a.primary, a.method = a.fallback, "exec:"+a.fallback.(ExecPinger).Path
		a.fallback = nil
	default:
		a.method = "none"
	}
	logger.Info("health check ping method chosen", "method", a.method)
	return a
}

func canListen(network string) bool {
	c, err := icmp.ListenPacket(network, "0.0.0.0")
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Method names the chosen method: "icmp-datagram", "icmp-raw", "exec:/usr/bin/ping" or
// "none" (no way to ping on this machine: every ping fails saying so).
func (a *AutoPinger) Method() string { return a.method }

// Ping pings addr with the chosen method.
func (a *AutoPinger) Ping(ctx context.Context, addr string) error {
	if a.primary == nil {
		return errors.New("cannot ping: no unprivileged or raw ICMP socket and no ping binary; set ping: false or install iputils-ping")
	}
	err := a.primary.Ping(ctx, addr)
	if errors.Is(err, errSocket) && a.fallback != nil {
		return a.fallback.Ping(ctx, addr)
	}
	return err
}
