package health

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// DefaultCheckTimeout bounds each single check (one ping, one port, one URL), as Occopus'
// 10 s URL timeout.
const DefaultCheckTimeout = 10 * time.Second

// Dialer opens TCP connections for port, URL and MySQL checks; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// CheckerOptions configures a Checker; every field is optional.
type CheckerOptions struct {
	// Pinger pings; nil uses NewAutoPinger.
	Pinger Pinger
	// Dialer opens TCP connections for port and MySQL checks, and for URL checks when
	// HTTPClient is nil; nil uses a net.Dialer.
	Dialer Dialer
	// HTTPClient makes URL checks; nil uses a client over Dialer that follows up to 10
	// redirects, uses no proxy and keeps no idle connections.
	HTTPClient *http.Client
	// CheckTimeout bounds each single check (default DefaultCheckTimeout).
	CheckTimeout time.Duration
	// Logger reports the ping method chosen; nil discards.
	Logger *slog.Logger
}

// Checker runs health checks from the orchestrator's host against an instance's address.
// It is safe for concurrent use and holds no goroutines or idle connections between checks.
type Checker struct {
	pinger  Pinger
	dialer  Dialer
	client  *http.Client
	timeout time.Duration
}

// Result is the outcome of one Check.
type Result struct {
	// OK is true when every check passed.
	OK bool
	// Detail is "ok", or the first failure in words: "ping 127.0.1.2: no reply",
	// "port 8080: connection refused", "url http://127.0.1.2/: 503 Service Unavailable".
	Detail string
	// Aborted is true when ctx ended before the checks finished: the result then says
	// nothing about the instance and should be dropped rather than judged.
	Aborted bool
}

// NewChecker returns a Checker with opts' parts, defaulting the missing ones.
func NewChecker(opts CheckerOptions) *Checker {
	c := &Checker{pinger: opts.Pinger, dialer: opts.Dialer, client: opts.HTTPClient, timeout: opts.CheckTimeout}
	if c.pinger == nil {
		c.pinger = NewAutoPinger(opts.Logger)
	}
	if c.dialer == nil {
		c.dialer = &net.Dialer{}
	}
	if c.client == nil {
		c.client = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         c.dialer.DialContext,
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: DefaultCheckTimeout,
		}}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultCheckTimeout
	}
	return c
}

var okResult = Result{OK: true, Detail: "ok"}

// Check runs s against addr in Occopus' order, stopping at the first failure: ping, each
// port (TCP connect), each URL (HEAD, GET when HEAD is not allowed; redirects followed; 2xx
// passes), each mysqldb (a MySQL server greeting on port 3306). URLs must already be
// rendered for this instance. An empty spec passes.
func (c *Checker) Check(ctx context.Context, addr string, s Spec) Result {
	if addr == "" && (s.Ping || len(s.Ports) > 0 || len(s.MySQLDBs) > 0) {
		return Result{Detail: "no address to check yet"}
	}
	if s.Ping {
		if r, done := c.step(ctx, "ping "+addr, func(ctx context.Context) error { return c.pinger.Ping(ctx, addr) }); done {
			return r
		}
	}
	for _, p := range s.Ports {
		if r, done := c.step(ctx, "port "+strconv.Itoa(p), func(ctx context.Context) error { return c.port(ctx, addr, p) }); done {
			return r
		}
	}
	for _, u := range s.URLs {
		if r, done := c.step(ctx, "url "+redactURL(u), func(ctx context.Context) error { return c.url(ctx, u) }); done {
			return r
		}
	}
	for _, db := range s.MySQLDBs {
		if r, done := c.step(ctx, "mysqldb "+db.Name, func(ctx context.Context) error { return c.mysql(ctx, addr) }); done {
			return r
		}
	}
	return okResult
}

// step runs one check under the per-check timeout and says whether Check must stop here.
func (c *Checker) step(ctx context.Context, what string, fn func(context.Context) error) (Result, bool) {
	if err := ctx.Err(); err != nil {
		return Result{Detail: what + ": check cancelled", Aborted: true}, true
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	err := fn(cctx)
	cancel()
	if err == nil {
		return Result{}, false
	}
	if ctx.Err() != nil {
		return Result{Detail: what + ": check cancelled", Aborted: true}, true
	}
	return Result{Detail: what + ": " + reason(err, c.timeout)}, true
}

func (c *Checker) port(ctx context.Context, addr string, port int) error {
	conn, err := c.dialer.DialContext(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

func (c *Checker) url(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an http(s) URL")
	}
	code, status, err := c.request(ctx, http.MethodHead, u)
	if err == nil && (code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented) {
		code, status, err = c.request(ctx, http.MethodGet, u)
	}
	if err != nil {
		return err
	}
	if code < 200 || code > 299 {
		return errors.New(status)
	}
	return nil
}

func (c *Checker) request(ctx context.Context, method string, u *url.URL) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", "skyfleet-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	// Read a little of a GET body so the server is not cut off mid-write, but never all of it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Status, nil
}

// mysql connects to addr:3306 and reads the server's greeting: a protocol-10 handshake means
// a MySQL (or MariaDB) server is up and accepting this host; an error packet ("Host … is not
// allowed", "Too many connections") or anything else fails.
func (c *Checker) mysql(ctx context.Context, addr string) error {
	conn, err := c.dialer.DialContext(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(MySQLPort)))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("no server greeting: %w", err)
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if n < 1 || n > 1<<16 {
		return fmt.Errorf("not a MySQL server greeting (packet length %d)", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return fmt.Errorf("no server greeting: %w", err)
	}
	switch body[0] {
	case 10:
		return nil
	case 0xff:
		if len(body) >= 3 {
			return fmt.Errorf("server refused (error %d): %s", binary.LittleEndian.Uint16(body[1:3]), trimPrintable(body[3:]))
		}
		return errors.New("server refused")
	}
	return fmt.Errorf("not a MySQL server greeting (protocol %d)", body[0])
}

func trimPrintable(b []byte) string {
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r >= 0x20 && r != 0x7f && len(out) < 200 {
			out = append(out, r)
		}
	}
	return string(out)
}

// reason turns a check error into the few words a user reads in an instance's health.
func reason(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, errNoReply):
		return "no reply"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out after " + timeout.String()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out after " + timeout.String()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop "Head "URL":", the detail already names the URL
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// redactURL hides a password in a URL before it goes into a message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}
