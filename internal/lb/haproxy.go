package lb

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// HAProxyOptions configures NewHAProxy.
type HAProxyOptions struct {
	// Binary is the haproxy executable; "" looks for haproxy in $PATH, then /usr/sbin/haproxy.
	Binary string
	// Listen is the client address ("host:port").
	Listen string
	// MetricsListen, when set, serves haproxy's own Prometheus exporter at /metrics there.
	MetricsListen string
	// TLSPEM, when set, is a PEM bundle (certificate chain, then key) and the frontend serves
	// HTTPS with HTTP/2 and HTTP/1.1 offered by ALPN.
	TLSPEM []byte
	// Slots is the number of server slots in the backend (default 64): the most backends
	// the engine can hold at once, draining ones included.
	Slots int
	// Dir holds the generated configuration, certificate and runtime API socket; "" makes a
	// temporary directory that Run removes.
	Dir string
	// DrainTimeout bounds how long a removed backend's sessions are waited for before they
	// are shut down, and how long haproxy may take to finish sessions at exit. Default 30s.
	DrainTimeout time.Duration
	// Poll is how often haproxy's statistics are read (connection counts, drains); default 1s.
	Poll time.Duration
	// RestartMin and RestartMax bound the wait before restarting a haproxy that died
	// (defaults 100ms and 10s; doubled after each quick death).
	RestartMin, RestartMax time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// HAProxy is the haproxy engine: it runs haproxy as a child process from a generated
// configuration whose leastconn backend has Slots disabled server slots, fills and empties
// the slots through the runtime API (no reloads), drains removed backends with
// "set server … state drain", and restarts haproxy with the current backends if it dies.
type HAProxy struct {
	opts HAProxyOptions
	bin  string
	log  *slog.Logger

	wake chan struct{}

	mu    sync.Mutex
	want  []Backend
	slots []haSlot // slots[i] is server s<i+1>
	// scur[i] is slot i's current sessions at the last statistics poll.
	scur []int
	pid  int
}

var _ Engine = (*HAProxy)(nil)

type slotState int

const (
	slotFree slotState = iota
	slotReady
	slotDraining
)

type haSlot struct {
	state      slotState
	id, addr   string
	drainSince time.Time
}

// haBackend is the name of the generated backend.
const haBackend = "be"

// NewHAProxy checks the options and finds the haproxy binary.
func NewHAProxy(opts HAProxyOptions) (*HAProxy, error) {
	if opts.Listen == "" {
		return nil, errors.New("new haproxy lb: a listen address is required")
	}
	if opts.Slots <= 0 {
		opts.Slots = 64
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.RestartMin <= 0 {
		opts.RestartMin = 100 * time.Millisecond
	}
	if opts.RestartMax < opts.RestartMin {
		opts.RestartMax = max(10*time.Second, opts.RestartMin)
	}
	bin, err := FindHAProxy(opts.Binary)
	if err != nil {
		return nil, err
	}
	h := &HAProxy{opts: opts, bin: bin, log: opts.Logger, wake: make(chan struct{}, 1)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "lb", "engine", "haproxy")
	h.slots = make([]haSlot, opts.Slots)
	h.scur = make([]int, opts.Slots)
	return h, nil
}

// FindHAProxy returns the haproxy executable: bin when set, else haproxy from $PATH, else
// /usr/sbin/haproxy (Debian's location, often outside a user's $PATH).
func FindHAProxy(bin string) (string, error) {
	if bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("find haproxy: %w", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy", nil
	}
	return "", errors.New("find haproxy: haproxy is not in $PATH nor at /usr/sbin/haproxy; install it (Debian: apt-get install haproxy) or use --engine builtin")
}

// Update replaces the backend set; see Engine. Changes reach haproxy at once through its
// runtime API.
func (h *HAProxy) Update(backends []Backend) {
	h.mu.Lock()
	h.want = sortBackends(backends)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Active returns the current sessions per backend id as of the last statistics poll,
// draining backends included. Statistics are read once per Poll, so a removed backend counts
// at least one session until a poll after haproxy stopped sending it requests has seen none
// (then it leaves the set): a stale zero must never let the orchestrator destroy an instance
// that still receives requests.
func (h *HAProxy) Active() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	wanted := make(map[string]string, len(h.want))
	for _, b := range h.want {
		wanted[b.ID] = b.Addr
	}
	out := map[string]int{}
	for i, s := range h.slots {
		if s.state == slotFree {
			continue
		}
		n := h.scur[i]
		if addr, ok := wanted[s.id]; !ok || addr != s.addr || s.state == slotDraining {
			n = max(n, 1)
		}
		out[s.id] += n
	}
	return out
}

// PID returns the running haproxy's process id, or 0.
func (h *HAProxy) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pid
}

var haConfig = template.Must(template.New("haproxy.cfg").Parse(`# Generated by skyfleet lb; changes are lost at the next start.
global
    stats socket {{.Socket}} mode 600 level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s
    timeout tunnel 1h
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response

frontend fe
    bind {{.Bind}}{{if .PEM}} ssl crt {{.PEM}} alpn h2,http/1.1{{end}}
    option forwardfor
    default_backend {{.Backend}}
{{if .MetricsBind}}
frontend metrics
    bind {{.MetricsBind}}
    http-request use-service prometheus-exporter if { path /metrics }
    http-request return status 404 content-type text/plain string "only /metrics is served here\n"
{{end}}
backend {{.Backend}}
    balance leastconn
    server-template s 1-{{.Slots}} 0.0.0.0:0 disabled check inter 1s fastinter 250ms downinter 1s rise 1 fall 2 observe layer4 error-limit 1 on-error mark-down
`))

// haBind turns "host:port" into haproxy's bind syntax.
func haBind(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("haproxy bind address %q: %w", addr, err)
	}
	if strings.Contains(host, ":") {
		return "ipv6@" + host + ":" + port, nil
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host + ":" + port, nil
}

// writeConfig writes haproxy.cfg (and the certificate) into dir.
func (h *HAProxy) writeConfig(dir string) (cfg, socket string, err error) {
	socket = filepath.Join(dir, "admin.sock")
	data := struct {
		Socket, Bind, PEM, MetricsBind, Backend string
		Slots                                   int
	}{Socket: socket, Backend: haBackend, Slots: h.opts.Slots}
	if data.Bind, err = haBind(h.opts.Listen); err != nil {
		return "", "", err
	}
	if h.opts.MetricsListen != "" {
		if data.MetricsBind, err = haBind(h.opts.MetricsListen); err != nil {
			return "", "", err
		}
	}
	if len(h.opts.TLSPEM) > 0 {
		data.PEM = filepath.Join(dir, "cert.pem")
		if err := os.WriteFile(data.PEM, h.opts.TLSPEM, 0o600); err != nil {
			return "", "", fmt.Errorf("write haproxy certificate: %w", err)
		}
	}
	var buf bytes.Buffer
	if err := haConfig.Execute(&buf, data); err != nil {
		return "", "", fmt.Errorf("render haproxy configuration: %w", err)
	}
	cfg = filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, buf.Bytes(), 0o600); err != nil {
		return "", "", fmt.Errorf("write haproxy configuration: %w", err)
	}
	return cfg, socket, nil
}

// Run starts haproxy and keeps it running with the current backends until ctx is done; see
// Engine. It fails when haproxy cannot be started at all (a bad configuration, a port in
// use); a haproxy that dies later is restarted with backoff.
func (h *HAProxy) Run(ctx context.Context) error {
	dir := h.opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "skyfleet-lb-")
		if err != nil {
			return fmt.Errorf("haproxy lb: %w", err)
		}
		defer func() { _ = os.RemoveAll(d) }()
		dir = d
	}
	cfg, socket, err := h.writeConfig(dir)
	if err != nil {
		return fmt.Errorf("haproxy lb: %w", err)
	}
	backoff := h.opts.RestartMin
	for first := true; ; first = false {
		started := time.Now()
		err := h.runOnce(ctx, cfg, socket, first)
		if ctx.Err() != nil {
			return nil
		}
		if first && errors.Is(err, errStartup) {
			return fmt.Errorf("haproxy lb: %w", err)
		}
		if time.Since(started) > time.Minute {
			backoff = h.opts.RestartMin
		}
		h.log.Error("haproxy exited; restarting it with the current backends", "error", err, "restart_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, h.opts.RestartMax)
	}
}

// errStartup marks a haproxy that exited before its runtime API answered.
var errStartup = errors.New("haproxy did not start")

// runOnce runs one haproxy process until it exits or ctx is done.
func (h *HAProxy) runOnce(ctx context.Context, cfg, socket string, first bool) error {
	_ = os.Remove(socket)
	out := &tailWriter{log: h.log}
	cmd := exec.Command(h.bin, "-f", cfg, "-db")
	cmd.Stdout, cmd.Stderr = out, out
	// haproxy must not outlive the role.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: %w", errStartup, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	h.mu.Lock()
	h.pid = cmd.Process.Pid
	// A fresh haproxy has every slot disabled: forget the old assignments.
	for i := range h.slots {
		h.slots[i] = haSlot{}
	}
	clear(h.scur)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.pid = 0
		h.mu.Unlock()
	}()
	log := h.log.With("pid", cmd.Process.Pid)

	// Wait for the runtime API.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := h.command(socket, "show info"); err == nil {
			break
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%w: %w: %s", errStartup, err, out.tail())
		case <-ctx.Done():
			return h.stop(cmd, exited)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			err := <-exited
			return fmt.Errorf("%w: the runtime API socket %s did not answer within 10s (%w): %s", errStartup, socket, err, out.tail())
		}
	}
	log.Info("haproxy running", "listen", h.opts.Listen, "metrics_listen", h.opts.MetricsListen, "slots", h.opts.Slots)
	h.apply(socket, log)
	tick := time.NewTicker(h.opts.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return h.stop(cmd, exited)
		case err := <-exited:
			return fmt.Errorf("haproxy exited: %w: %s", err, out.tail())
		case <-h.wake:
			h.apply(socket, log)
		case <-tick.C:
			h.poll(socket, log)
		}
	}
}

// stop asks haproxy to finish its sessions (soft stop) and kills it after the drain timeout.
func (h *HAProxy) stop(cmd *exec.Cmd, exited <-chan error) error {
	_ = cmd.Process.Signal(syscall.SIGUSR1)
	t := time.NewTimer(h.opts.DrainTimeout)
	defer t.Stop()
	select {
	case err := <-exited:
		h.log.Debug("haproxy stopped", "status", err)
	case <-t.C:
		_ = cmd.Process.Kill()
		h.log.Warn("haproxy killed: sessions still open after the drain timeout", "status", <-exited)
	}
	return nil
}

// command sends one runtime API command line (several commands may be joined by ";") and
// returns haproxy's answer.
func (h *HAProxy) command(socket, line string) (string, error) {
	conn, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime api: %w", err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime api: %w", err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return string(b), fmt.Errorf("haproxy runtime api: %w", err)
	}
	return string(b), nil
}

// run sends commands and logs anything haproxy answers that is not an acknowledgement.
func (h *HAProxy) run(socket string, log *slog.Logger, cmds []string) {
	if len(cmds) == 0 {
		return
	}
	out, err := h.command(socket, strings.Join(cmds, ";"))
	if err != nil {
		log.Warn("haproxy runtime api command failed", "error", err)
		return
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "IP changed from") || strings.HasPrefix(line, "no need to change") {
			continue
		}
		log.Warn("haproxy runtime api answered", "answer", line)
	}
}

// apply brings the slots to the wanted backends.
func (h *HAProxy) apply(socket string, log *slog.Logger) {
	h.mu.Lock()
	want := map[string]Backend{}
	for _, b := range h.want {
		want[b.ID] = b
	}
	var cmds []string
	now := time.Now()
	placed := map[string]bool{}
	for i := range h.slots {
		s := &h.slots[i]
		if s.state == slotFree {
			continue
		}
		b, ok := want[s.id]
		switch {
		case ok && b.Addr == s.addr && !placed[s.id]:
			placed[s.id] = true
			if s.state == slotDraining {
				s.state = slotReady
				cmds = append(cmds, fmt.Sprintf("set server %s/s%d state ready", haBackend, i+1))
				log.Info("backend back from draining", "node_id", s.id, "address", s.addr)
			}
		case s.state == slotReady:
			s.state, s.drainSince = slotDraining, now
			cmds = append(cmds, fmt.Sprintf("set server %s/s%d state drain", haBackend, i+1))
			log.Info("backend draining", "node_id", s.id, "address", s.addr, "slot", i+1)
		}
	}
	for _, b := range h.want {
		if placed[b.ID] {
			continue
		}
		host, port, err := net.SplitHostPort(b.Addr)
		if err != nil {
			log.Error("backend address is not host:port; skipping it", "node_id", b.ID, "address", b.Addr)
			continue
		}
		i := h.freeSlot()
		if i < 0 {
			log.Error("every haproxy server slot is in use; the backend gets no traffic until one frees", "node_id", b.ID, "slots", len(h.slots))
			continue
		}
		h.slots[i] = haSlot{state: slotReady, id: b.ID, addr: b.Addr}
		h.scur[i] = 0
		cmds = append(cmds,
			fmt.Sprintf("set server %s/s%d addr %s port %s", haBackend, i+1, host, port),
			fmt.Sprintf("set server %s/s%d state ready", haBackend, i+1))
		log.Info("backend added", "node_id", b.ID, "address", b.Addr, "slot", i+1)
	}
	h.mu.Unlock()
	h.run(socket, log, cmds)
}

func (h *HAProxy) freeSlot() int {
	for i, s := range h.slots {
		if s.state == slotFree {
			return i
		}
	}
	return -1
}

// poll reads current sessions per server, finishes drains and refreshes Active.
func (h *HAProxy) poll(socket string, log *slog.Logger) {
	out, err := h.command(socket, "show stat -1 4 -1")
	if err != nil {
		log.Warn("reading haproxy statistics failed", "error", err)
		return
	}
	scur, err := parseStat(out, haBackend)
	if err != nil {
		log.Warn("reading haproxy statistics failed", "error", err)
		return
	}
	h.mu.Lock()
	now := time.Now()
	var cmds []string
	for i := range h.slots {
		s := &h.slots[i]
		if s.state == slotFree {
			continue
		}
		n := scur[fmt.Sprintf("s%d", i+1)]
		h.scur[i] = n
		if s.state == slotDraining {
			timedOut := now.Sub(s.drainSince) >= h.opts.DrainTimeout
			if n == 0 || timedOut {
				if n > 0 {
					cmds = append(cmds, fmt.Sprintf("shutdown sessions server %s/s%d", haBackend, i+1))
				}
				cmds = append(cmds, fmt.Sprintf("set server %s/s%d state maint", haBackend, i+1))
				log.Info("backend removed", "node_id", s.id, "address", s.addr, "slot", i+1, "drain_timeout", timedOut)
				*s = haSlot{}
			}
		}
	}
	h.mu.Unlock()
	h.run(socket, log, cmds)
}

// parseStat returns the current sessions (scur) of each server of backend in "show stat" CSV.
func parseStat(out, backend string) (map[string]int, error) {
	out = strings.TrimPrefix(out, "# ")
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse haproxy show stat: %w", err)
	}
	if len(recs) == 0 {
		return nil, errors.New("parse haproxy show stat: empty answer")
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	px, sv, sc := col["pxname"], col["svname"], col["scur"]
	if _, ok := col["scur"]; !ok {
		return nil, errors.New("parse haproxy show stat: no scur column")
	}
	res := map[string]int{}
	for _, rec := range recs[1:] {
		if len(rec) <= max(px, sv, sc) || rec[px] != backend {
			continue
		}
		n, err := strconv.Atoi(rec[sc])
		if err != nil {
			continue
		}
		res[rec[sv]] = n
	}
	return res, nil
}

// tailWriter logs haproxy's output line by line and keeps the last lines for error messages.
type tailWriter struct {
	log   *slog.Logger
	mu    sync.Mutex
	buf   []byte
	lines []string
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if strings.Contains(line, "[ALERT]") {
			w.log.Warn("haproxy", "output", line)
		} else {
			w.log.Debug("haproxy", "output", line)
		}
		w.lines = append(w.lines, line)
		if len(w.lines) > 10 {
			w.lines = w.lines[1:]
		}
	}
	return len(p), nil
}

func (w *tailWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, " | ")
}
