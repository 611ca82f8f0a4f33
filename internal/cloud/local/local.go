package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// Defaults.
const (
	// DefaultAddressRange is the loopback range instance addresses come from. Linux routes
	// all of 127.0.0.0/8 to the loopback interface, so these addresses work without any
	// configuration; 127.0.0.1 itself is never handed out.
	DefaultAddressRange = "127.42.0.0/16"
	// DefaultKillGrace is how long Destroy waits after SIGTERM before sending SIGKILL.
	DefaultKillGrace = 10 * time.Second
)

// Environment variables every instance process gets.
const (
	envIP        = "SKYFLEET_IP"         // the instance's loopback address
	envNodeID    = "SKYFLEET_NODE_ID"    // the node id (the idempotency token)
	envInfraID   = "SKYFLEET_INFRA_ID"   // the infrastructure id
	envInfraName = "SKYFLEET_INFRA_NAME" // the infrastructure name
	envNode      = "SKYFLEET_NODE"       // the node name
	envBin       = "SKYFLEET_BIN"        // the running skyfleet binary
)

// idPrefix starts every instance id; the rest is the token.
const idPrefix = "local-"

// skyfleetArg0 is the argv[0] replaced by the running skyfleet binary.
const skyfleetArg0 = "skyfleet"

const (
	reapInterval = 500 * time.Millisecond // how often exited children are collected
	pollInterval = 50 * time.Millisecond  // how often Destroy looks whether processes ended
	killWait     = 5 * time.Second        // how long Destroy waits for SIGKILL to take effect
)

// inheritedEnv lists the orchestrator's environment variables an instance inherits; the
// rest (credentials included) is not passed on.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// Options configures a Local provider.
type Options struct {
	// DataDir holds the instances, each in DataDir/instances/<id>/ with workdir/,
	// stdout.log, stderr.log and instance.json. Required.
	DataDir string
	// AddressRange is the loopback range (inside 127.0.0.0/8) addresses come from; default
	// DefaultAddressRange (127.42.0.0/16).
	AddressRange string
	// KillGrace is how long Destroy waits after SIGTERM before SIGKILL; default 10s.
	KillGrace time.Duration
	// Logger receives instance lifecycle records and limit warnings; default discards.
	Logger *slog.Logger
	// Clock stamps creation and exit times; default time.Now.
	Clock func() time.Time
	// Executable is the skyfleet binary: an argv[0] of exactly "skyfleet" is replaced by it
	// and processes find it in $SKYFLEET_BIN. Default os.Executable().
	Executable string
	// CgroupRoot is the cgroup v2 mount point; default DefaultCgroupRoot (/sys/fs/cgroup).
	CgroupRoot string
}

// Local runs instances as process groups on this machine. It implements cloud.Driver,
// cloud.Provider and cloud.Lister; every method is safe for concurrent use. Close stops its
// background reaper without touching the instances, which keep running.
type Local struct {
	dir       string
	log       *slog.Logger
	clock     func() time.Time
	exe       string
	grace     time.Duration
	defRange  netip.Prefix
	cg        *cgroups
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}

	mu       sync.Mutex
	used     map[string]string // address → instance id
	pools    map[netip.Prefix]*addrPool
	locks    map[string]*keyLock
	children map[int]child // processes this Local started and has not reaped
}

type child struct {
	id    string
	start uint64
}

var (
	_ cloud.Driver   = (*Local)(nil)
	_ cloud.Provider = (*Local)(nil)
	_ cloud.Lister   = (*Local)(nil)
	_ cloud.Provider = (*bound)(nil)
	_ cloud.Lister   = (*bound)(nil)

	_ cloud.AddressReserver = (*Local)(nil)
	_ cloud.AddressReserver = (*bound)(nil)
)

// New opens (creating if needed) DataDir/instances, takes note of the addresses recorded
// there, and starts the reaper that collects the exit status of processes this Local
// starts. Call Close when done. Only one Local may manage a data dir at a time (the
// orchestrator's store lock on the same data dir guarantees it).
func New(opts Options) (*Local, error) {
	if opts.DataDir == "" {
		return nil, errors.New("new local provider: empty data dir")
	}
	if opts.AddressRange == "" {
		opts.AddressRange = DefaultAddressRange
	}
	prefix, err := parseRange(opts.AddressRange)
	if err != nil {
		return nil, fmt.Errorf("new local provider: address range: %w", err)
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = DefaultKillGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = DefaultCgroupRoot
	}
	log := opts.Logger.With("component", "local")
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			log.Warn("cannot find the running skyfleet binary; commands starting with skyfleet will fail", "err", err)
		}
		opts.Executable = exe
	}
	dir := filepath.Join(opts.DataDir, "instances")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("new local provider: %w", err)
	}
	l := &Local{
		dir:      dir,
		log:      log,
		clock:    opts.Clock,
		exe:      opts.Executable,
		grace:    opts.KillGrace,
		defRange: prefix,
		cg:       &cgroups{root: opts.CgroupRoot},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		used:     map[string]string{},
		pools:    map[netip.Prefix]*addrPool{},
		locks:    map[string]*keyLock{},
		children: map[int]child{},
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("new local provider: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		rec, err := readRecord(filepath.Join(dir, e.Name()))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.Warn("skipping unreadable instance record", "instance_id", e.Name(), "err", err)
			}
			continue
		}
		if rec.Address != "" {
			l.used[rec.Address] = rec.ID
		}
	}
	go l.reapLoop()
	return l, nil
}

// Close stops the reaper. Instances keep running; a later Local on the same DataDir finds
// them with List. Close is idempotent.
func (l *Local) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
	})
	return nil
}

// Bind validates resource (see DecodeResource) and returns a provider that applies it to
// every instance it creates. Credentials are not used.
func (l *Local) Bind(resource map[string]any, _ *cloud.Credentials) (cloud.Provider, error) {
	res, err := DecodeResource(resource)
	if err != nil {
		return nil, err
	}
	return &bound{l: l, res: res}, nil
}

type bound struct {
	l   *Local
	res Resource
}

func (b *bound) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	return b.l.create(ctx, b.res, spec)
}
func (b *bound) Destroy(ctx context.Context, id string) error { return b.l.Destroy(ctx, id) }
func (b *bound) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	return b.l.Describe(ctx, id)
}
func (b *bound) List(ctx context.Context, tags map[string]string) ([]cloud.Instance, error) {
	return b.l.List(ctx, tags)
}
func (b *bound) Reserve(ctx context.Context, token string, resource map[string]any) (string, error) {
	return b.l.Reserve(ctx, token, resource)
}
func (b *bound) Unreserve(ctx context.Context, token string) error {
	return b.l.Unreserve(ctx, token)
}

// Create starts the process described by spec.Context (`type: process`) with the limits of
// spec.Resource, and returns its id, "local-<token>".
//
// Create is idempotent on spec.Token, and a token names one process lifetime: when a record
// for the token exists, Create returns its id without starting anything, whether the
// process still runs or not. A process that died is reported gone by Describe and the engine
// replaces it with a new node (and token); restarting it here under the old token would
// hide the crash from healing and could run a second copy of a node that had already done
// work. The one exception is a record the orchestrator wrote but never completed because it
// stopped while starting the process: then the process is looked for by its node id and,
// when absent, started.
func (l *Local) Create(ctx context.Context, spec cloud.InstanceSpec) (string, error) {
	res, err := DecodeResource(spec.Resource)
	if err != nil {
		return "", fmt.Errorf("local create: %w", err)
	}
	return l.create(ctx, res, spec)
}

// Reserve implements cloud.AddressReserver: it allocates the instance's loopback address and
// records it (a provisional record without a process), so that the engine can render `ip`
// into the instance's templates before Create starts the process on that address.
func (l *Local) Reserve(ctx context.Context, token string, resource map[string]any) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("local reserve: %w", err)
	}
	res, err := DecodeResource(resource)
	if err != nil {
		return "", fmt.Errorf("local reserve: %w", err)
	}
	if !validToken(token) {
		return "", fmt.Errorf("local reserve: token %q is not usable as an instance name", token)
	}
	id := idPrefix + token
	unlock := l.lock(id)
	defer unlock()
	dir := filepath.Join(l.dir, id)
	rec, err := readRecord(dir)
	switch {
	case err == nil && rec.Address != "":
		return rec.Address, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("local reserve %s: %w", id, err)
	}
	prefix := l.defRange
	if res.AddressRange != "" {
		if prefix, err = parseRange(res.AddressRange); err != nil {
			return "", fmt.Errorf("local reserve: resource.address_range: %w", err)
		}
	}
	addr, err := l.allocate(prefix, id)
	if err != nil {
		return "", fmt.Errorf("local reserve %s: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		l.release(addr, id)
		return "", fmt.Errorf("local reserve %s: %w", id, err)
	}
	if err := writeRecord(dir, &record{ID: id, Token: token, Address: addr, Created: l.clock().UTC()}); err != nil {
		l.release(addr, id)
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("local reserve %s: %w", id, err)
	}
	return addr, nil
}

// Unreserve implements cloud.AddressReserver: it removes a reservation whose process was
// never started, and leaves a started instance alone.
func (l *Local) Unreserve(ctx context.Context, token string) error {
	if !validToken(token) {
		return nil
	}
	id := idPrefix + token
	rec, err := readRecord(filepath.Join(l.dir, id))
	if err != nil || rec.PID != 0 || len(rec.Command) != 0 {
		return nil
	}
	return l.Destroy(ctx, id)
}

func (l *Local) create(ctx context.Context, res Resource, spec cloud.InstanceSpec) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("local create: %w", err)
	}
	if !validToken(spec.Token) {
		return "", fmt.Errorf("local create: token %q is not usable as an instance name (want 1-128 letters, digits, '.', '_' or '-', not starting with '.')", spec.Token)
	}
	c, err := DecodeContext(spec.Context)
	if err != nil {
		return "", fmt.Errorf("local create: %w", err)
	}
	id := idPrefix + spec.Token
	unlock := l.lock(id)
	defer unlock()
	dir := filepath.Join(l.dir, id)

	rec, err := readRecord(dir)
	switch {
	case err == nil && rec.PID != 0:
		return id, nil
	case err == nil:
		if pid, st, ok := findLeader(spec.Token); ok {
			rec.PID, rec.StartTicks = pid, st.start
			if err := writeRecord(dir, rec); err != nil {
				return "", fmt.Errorf("local create %s: %w", id, err)
			}
			l.log.Info("adopted unrecorded instance process", "instance_id", id, "node_id", spec.Token, "pid", pid)
			return id, nil
		}
	case errors.Is(err, fs.ErrNotExist):
		rec = nil
	default:
		return "", fmt.Errorf("local create %s: refusing to start a second process over an unreadable record (destroy it first): %w", id, err)
	}

	addr := ""
	if rec != nil && rec.Address != "" {
		addr = rec.Address
		l.mu.Lock()
		l.used[addr] = id
		l.mu.Unlock()
	}
	if addr == "" {
		prefix := l.defRange
		if res.AddressRange != "" {
			if prefix, err = parseRange(res.AddressRange); err != nil {
				return "", fmt.Errorf("local create: resource.address_range: %w", err)
			}
		}
		if addr, err = l.allocate(prefix, id); err != nil {
			return "", fmt.Errorf("local create %s: %w", id, err)
		}
	}
	if err := l.start(dir, id, addr, res, c, spec); err != nil {
		l.release(addr, id)
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("local create %s: %w", id, err)
	}
	return id, nil
}

// start prepares the instance directory and starts its process. The caller holds the
// instance's lock and cleans up on error.
func (l *Local) start(dir, id, addr string, res Resource, c Context, spec cloud.InstanceSpec) error {
	cwd := filepath.Join(dir, "workdir", c.Workdir)
	if err := os.MkdirAll(cwd, 0o700); err != nil {
		return err
	}
	if err := writeFiles(cwd, c.Files); err != nil {
		return err
	}
	rec := &record{
		ID: id, Token: spec.Token, InfraID: spec.InfraID, InfraName: spec.InfraName, Node: spec.Node,
		Address: addr, Tags: maps.Clone(spec.Tags), Created: l.clock().UTC(),
		Command: c.Command, Workdir: cwd,
	}
	// The provisional record (pid 0) keeps the address allocated and lets a restarted
	// orchestrator find the process by its node id if it stops before the pid is written.
	if err := writeRecord(dir, rec); err != nil {
		return err
	}
	env := l.environ(c, spec, addr)
	path, err := l.resolve(c.Command[0], env, cwd)
	if err != nil {
		return err
	}
	rec.Path = path
	cgDir, warnings := l.cg.create(id, res)
	rec.Cgroup = cgDir
	pid, err := l.spawn(dir, cwd, path, c.Command, env, cgDir, &warnings)
	if err != nil {
		_ = removeCgroup(cgDir)
		return err
	}
	rec.Warnings = warnings
	for _, w := range warnings {
		l.log.Warn("instance limit not applied", "instance_id", id, "node_id", spec.Token, "node", spec.Node, "infra_id", spec.InfraID, "reason", w)
	}
	st, err := readStat(pid)
	if err == nil {
		rec.PID, rec.StartTicks = pid, st.start
		err = writeRecord(dir, rec)
	}
	if err != nil {
		// Without a record the process could never be found again: take it down.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		l.reapBlocking(pid)
		_ = removeCgroup(cgDir)
		return fmt.Errorf("record started process %d: %w", pid, err)
	}
	l.mu.Lock()
	l.children[pid] = child{id: id, start: st.start}
	l.mu.Unlock()
	l.log.Info("instance started", "instance_id", id, "node_id", spec.Token, "node", spec.Node,
		"infra_id", spec.InfraID, "pid", pid, "address", addr)
	return nil
}

// spawn starts argv in its own process group with stdin from /dev/null and output appended
// to the instance's log files, inside cgDir when given. The process is released at once:
// the orchestrator never waits on it in a way that ties their lifetimes (no Pdeathsig), and
// the reaper collects its exit status while the orchestrator runs.
func (l *Local) spawn(dir, cwd, path string, argv, env []string, cgDir string, warnings *[]string) (int, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	// The child holds its own copies of these descriptors; closing ours cannot fail usefully.
	defer func() { _ = devnull.Close() }()
	stdout, err := os.OpenFile(filepath.Join(dir, "stdout.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() { _ = stdout.Close() }()
	stderr, err := os.OpenFile(filepath.Join(dir, "stderr.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() { _ = stderr.Close() }()
	attr := func(cgFD int) *os.ProcAttr {
		sys := &syscall.SysProcAttr{Setpgid: true}
		if cgFD >= 0 {
			sys.UseCgroupFD, sys.CgroupFD = true, cgFD
		}
		return &os.ProcAttr{Dir: cwd, Env: env, Files: []*os.File{devnull, stdout, stderr}, Sys: sys}
	}
	var proc *os.Process
	joined := false
	if cgDir != "" {
		// Starting the process inside its group (clone3 with CLONE_INTO_CGROUP) leaves no
		// window in which it runs unlimited.
		if f, err := os.Open(cgDir); err == nil {
			proc, err = os.StartProcess(path, argv, attr(int(f.Fd())))
			joined = err == nil
			_ = f.Close() // a directory opened for its descriptor
		}
	}
	if proc == nil {
		if proc, err = os.StartProcess(path, argv, attr(-1)); err != nil {
			return 0, fmt.Errorf("start %s: %w", path, unwrapPath(err))
		}
	}
	pid := proc.Pid
	// Release drops the os.Process handle; reaping is done by pid (see reap).
	_ = proc.Release()
	if cgDir != "" && !joined {
		if err := joinCgroup(cgDir, pid); err != nil {
			*warnings = append(*warnings, fmt.Sprintf("limits not applied: %v", err))
		}
	}
	return pid, nil
}

// environ builds the process environment: a few inherited variables, the user's env, then
// the SKYFLEET_* variables, which win.
func (l *Local) environ(c Context, spec cloud.InstanceSpec, addr string) []string {
	m := map[string]string{}
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	if _, ok := m["PATH"]; !ok {
		m["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	maps.Copy(m, c.Env)
	m[envIP] = addr
	m[envNodeID] = spec.Token
	m[envInfraID] = spec.InfraID
	m[envInfraName] = spec.InfraName
	m[envNode] = spec.Node
	m[envBin] = l.exe
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// resolve finds the executable for argv0: the running skyfleet binary for "skyfleet", a
// path relative to the working directory when argv0 contains a slash, else the first
// match in the process's PATH.
func (l *Local) resolve(argv0 string, env []string, cwd string) (string, error) {
	if argv0 == skyfleetArg0 {
		if l.exe == "" {
			return "", errors.New("command skyfleet: the running skyfleet binary is unknown")
		}
		return l.exe, nil
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("command %q: %w", argv0, err)
		}
		return p, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, argv0)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q: not found in PATH %q", argv0, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return unwrapPath(err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// writeFiles writes the rendered files below cwd through an os.Root, so that no path (nor
// a symlink the files might create) can reach outside it.
func writeFiles(cwd string, files map[string]string) error {
	if len(files) == 0 {
		return nil
	}
	root, err := os.OpenRoot(cwd)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := checkRelPath(p); err != nil {
			return fmt.Errorf("write file: %w", err)
		}
		if d := filepath.Dir(p); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("write file %s: %w", p, err)
			}
		}
		if err := root.WriteFile(p, []byte(files[p]), 0o600); err != nil {
			return fmt.Errorf("write file %s: %w", p, err)
		}
	}
	return nil
}

// Describe reports the instance: running iff its recorded pid exists and has the recorded
// start time; stopped if that process is stopped by a signal; gone otherwise (the exit
// status in Detail when this orchestrator saw it), also when no record exists.
func (l *Local) Describe(ctx context.Context, id string) (cloud.Instance, error) {
	if err := ctx.Err(); err != nil {
		return cloud.Instance{}, fmt.Errorf("local describe %s: %w", id, err)
	}
	if !validID(id) {
		return cloud.Instance{ID: id, State: cloud.StateGone}, nil
	}
	unlock := l.lock(id)
	defer unlock()
	dir := filepath.Join(l.dir, id)
	rec, err := readRecord(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return cloud.Instance{ID: id, State: cloud.StateGone}, nil
	}
	if err != nil {
		return cloud.Instance{ID: id, Token: strings.TrimPrefix(id, idPrefix), State: cloud.StateGone,
			Detail: fmt.Sprintf("unreadable instance record: %v", err)}, nil
	}
	return l.observe(dir, rec), nil
}

// List returns the instances recorded in the data dir that carry every one of tags, sorted
// by id. It is how a restarted orchestrator finds the instances that kept running.
func (l *Local) List(ctx context.Context, tags map[string]string) ([]cloud.Instance, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("local list: %w", err)
	}
	var out []cloud.Instance
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("local list: %w", err)
		}
		id := e.Name()
		if !e.IsDir() || !validID(id) {
			continue
		}
		in, ok := l.listOne(id, tags)
		if ok {
			out = append(out, in)
		}
	}
	return out, nil
}

func (l *Local) listOne(id string, tags map[string]string) (cloud.Instance, bool) {
	unlock := l.lock(id)
	defer unlock()
	dir := filepath.Join(l.dir, id)
	rec, err := readRecord(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.log.Warn("skipping unreadable instance record", "instance_id", id, "err", err)
		}
		return cloud.Instance{}, false
	}
	for k, v := range tags {
		if got, ok := rec.Tags[k]; !ok || got != v {
			return cloud.Instance{}, false
		}
	}
	return l.observe(dir, rec), true
}

// observe turns a record into an Instance, checking the process. The caller holds the
// instance's lock.
func (l *Local) observe(dir string, rec *record) cloud.Instance {
	state, detail := l.status(dir, rec)
	notes := slices.Clone(rec.Warnings)
	if detail != "" {
		notes = append([]string{detail}, notes...)
	}
	return cloud.Instance{
		ID:             rec.ID,
		Token:          rec.Token,
		State:          state,
		Addresses:      []string{rec.Address},
		PrivateAddress: rec.Address,
		Tags:           maps.Clone(rec.Tags),
		Created:        rec.Created,
		Detail:         strings.Join(notes, "; "),
	}
}

func (l *Local) status(dir string, rec *record) (cloud.State, string) {
	if rec.PID == 0 {
		pid, st, ok := findLeader(rec.Token)
		if !ok {
			return cloud.StateGone, "process was never recorded as started (the orchestrator stopped while starting it)"
		}
		rec.PID, rec.StartTicks = pid, st.start
		if err := writeRecord(dir, rec); err != nil {
			l.log.Warn("cannot complete instance record", "instance_id", rec.ID, "err", err)
		}
	}
	st, err := readStat(rec.PID)
	switch {
	case err != nil:
		return cloud.StateGone, exitDetail(rec)
	case st.start != rec.StartTicks:
		return cloud.StateGone, fmt.Sprintf("process %d is gone (the pid now names another process)", rec.PID)
	case st.zombie():
		if info, ok := l.reap(rec.PID, rec.StartTicks); ok {
			rec.Exit = &info
			if err := writeRecord(dir, rec); err != nil {
				l.log.Warn("cannot record instance exit", "instance_id", rec.ID, "err", err)
			}
		}
		return cloud.StateGone, exitDetail(rec)
	case st.state == 'T' || st.state == 't':
		return cloud.StateStopped, fmt.Sprintf("process %d is stopped", rec.PID)
	}
	return cloud.StateRunning, ""
}

func exitDetail(rec *record) string {
	if rec.Exit != nil {
		return fmt.Sprintf("process %d exited: %s", rec.PID, rec.Exit.Status)
	}
	return fmt.Sprintf("process %d is not running", rec.PID)
}

// Destroy stops the instance's process group (SIGTERM, then SIGKILL after the kill grace)
// and removes its directory, cgroup and address. The process's identity is checked by start
// time before every signal, so a pid reused by another process is never signalled.
// Destroying an unknown or already destroyed instance succeeds. When ctx ends during the
// grace period the group is killed at once and the context's error returned; the directory
// is then left for the retried Destroy to remove.
func (l *Local) Destroy(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	unlock := l.lock(id)
	defer unlock()
	dir := filepath.Join(l.dir, id)
	token := strings.TrimPrefix(id, idPrefix)
	rec, err := readRecord(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
		rec = &record{ID: id, Token: token} // a directory left by an interrupted Create
	case err != nil:
		l.log.Warn("destroying instance with an unreadable record", "instance_id", id, "err", err)
		rec = &record{ID: id, Token: token}
	}
	pid, start := rec.PID, rec.StartTicks
	if pid == 0 {
		if p, st, ok := findLeader(token); ok {
			pid, start = p, st.start
		}
	}
	if pid != 0 {
		if err := l.terminate(ctx, pid, start, token); err != nil {
			return fmt.Errorf("local destroy %s: %w", id, err)
		}
	}
	if err := removeCgroup(rec.Cgroup); err != nil {
		l.log.Warn("cannot remove instance cgroup", "instance_id", id, "err", err)
	}
	if err := removeAll(dir); err != nil {
		return fmt.Errorf("local destroy %s: %w", id, err)
	}
	l.release(rec.Address, id)
	l.log.Info("instance destroyed", "instance_id", id, "node_id", token, "pid", pid)
	return nil
}

// removeAll removes an instance directory, retrying when a file appeared in it while it
// was being removed.
func removeAll(dir string) error {
	var err error
	for range 3 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
	}
	return err
}

// terminate ends every process of the instance: SIGTERM, then SIGKILL after the grace.
func (l *Local) terminate(ctx context.Context, pid int, start uint64, token string) error {
	remaining := func() []int {
		l.reap(pid, start)
		_, procs := members(pid, start, token)
		return procs
	}
	if len(remaining()) == 0 {
		return nil
	}
	l.signal(pid, start, token, syscall.SIGTERM)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	grace := time.NewTimer(l.grace)
	defer grace.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			l.signal(pid, start, token, syscall.SIGKILL)
			return ctx.Err()
		case <-grace.C:
			break wait
		case <-ticker.C:
			if len(remaining()) == 0 {
				return nil
			}
		}
	}
	l.log.Warn("instance ignored SIGTERM; sending SIGKILL", "pid", pid, "node_id", token, "grace", l.grace)
	l.signal(pid, start, token, syscall.SIGKILL)
	deadline := time.NewTimer(killWait)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("processes %v survived SIGKILL", remaining())
		case <-ticker.C:
			if len(remaining()) == 0 {
				return nil
			}
		}
	}
}

// members returns whether the group leader pid is still the instance's process (by start
// time; a zombie still holds its pid) and the live processes to stop. While the leader
// holds the pid, the group id cannot name another group, so every member is the instance's;
// once it is gone, only members carrying the instance's node id in their environment count.
func members(pid int, start uint64, token string) (bool, []int) {
	st, err := readStat(pid)
	leader := err == nil && st.start == start
	all, _ := liveMembers(pid)
	if leader {
		return true, all
	}
	kv := envNodeID + "=" + token
	var out []int
	for _, p := range all {
		if hasEnv(p, kv) {
			out = append(out, p)
		}
	}
	return false, out
}

func (l *Local) signal(pid int, start uint64, token string, sig syscall.Signal) {
	leader, procs := members(pid, start, token)
	if leader {
		_ = syscall.Kill(-pid, sig)
		return
	}
	for _, p := range procs {
		_ = syscall.Kill(p, sig)
	}
}

// reap collects the exit status of pid when it is a zombie child of this process and still
// has start time start. Identity is checked and the zombie reaped under l.mu, the only
// place this package reaps, so a pid that another part of the program waits for is never
// taken.
func (l *Local) reap(pid int, start uint64) (exitInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := readStat(pid)
	if err != nil || st.start != start || !st.zombie() {
		return exitInfo{}, false
	}
	var ws syscall.WaitStatus
	var wpid int
	for {
		wpid, err = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if wpid != pid {
		if errors.Is(err, syscall.ECHILD) {
			delete(l.children, pid)
		}
		return exitInfo{}, false
	}
	delete(l.children, pid)
	return exitInfo{Status: waitStatus(ws), At: l.clock().UTC()}, true
}

// reapBlocking waits (bounded) for a just-killed child that was never recorded.
func (l *Local) reapBlocking(pid int) {
	st, err := readStat(pid)
	if err != nil {
		return
	}
	for range 100 {
		if _, ok := l.reap(pid, st.start); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitStatus(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// reapLoop collects exited children so they do not linger as zombies, and records their
// exit status for Describe. It runs until Close.
func (l *Local) reapLoop() {
	defer close(l.done)
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.reapChildren()
		}
	}
}

func (l *Local) reapChildren() {
	l.mu.Lock()
	kids := maps.Clone(l.children)
	l.mu.Unlock()
	for pid, c := range kids {
		info, ok := l.reap(pid, c.start)
		if !ok {
			continue
		}
		l.log.Info("instance process exited", "instance_id", c.id, "pid", pid, "status", info.Status)
		// A Destroy in progress holds the lock and removes the record anyway.
		unlock, locked := l.tryLock(c.id)
		if !locked {
			continue
		}
		dir := filepath.Join(l.dir, c.id)
		if rec, err := readRecord(dir); err == nil && rec.PID == pid && rec.Exit == nil {
			rec.Exit = &info
			if err := writeRecord(dir, rec); err != nil {
				l.log.Warn("cannot record instance exit", "instance_id", c.id, "err", err)
			}
		}
		unlock()
	}
}

func (l *Local) allocate(prefix netip.Prefix, id string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pool, ok := l.pools[prefix]
	if !ok {
		pool = newAddrPool(prefix)
		l.pools[prefix] = pool
	}
	addr, err := pool.allocate(func(a string) bool { _, taken := l.used[a]; return taken })
	if err != nil {
		return "", err
	}
	l.used[addr] = id
	return addr, nil
}

func (l *Local) release(addr, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if addr != "" && l.used[addr] == id {
		delete(l.used, addr)
	}
}

// keyLock serialises the operations on one instance.
type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (l *Local) lock(id string) func() {
	k := l.ref(id)
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.unref(id, k)
	}
}

func (l *Local) tryLock(id string) (func(), bool) {
	k := l.ref(id)
	if !k.mu.TryLock() {
		l.unref(id, k)
		return nil, false
	}
	return func() {
		k.mu.Unlock()
		l.unref(id, k)
	}, true
}

func (l *Local) ref(id string) *keyLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.locks[id]
	if k == nil {
		k = &keyLock{}
		l.locks[id] = k
	}
	k.refs++
	return k
}

func (l *Local) unref(id string, k *keyLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k.refs--
	if k.refs == 0 {
		delete(l.locks, id)
	}
}

// validToken reports whether a token can name an instance directory.
func validToken(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' {
		return false
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

func validID(id string) bool {
	t, ok := strings.CutPrefix(id, idPrefix)
	return ok && validToken(t)
}
