package demoapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresInstallHint is the advice given when the PostgreSQL server binaries are missing.
const PostgresInstallHint = "install the PostgreSQL server package: apt-get install postgresql (Debian, Ubuntu)"

// ErrPostgresMissing is returned (wrapped) when initdb or postgres cannot be found.
var ErrPostgresMissing = errors.New("PostgreSQL server binaries not found")

// PostgresNode runs a real PostgreSQL server as the database node of the demo: it
// initialises DataDir when it is empty, writes a pg_hba.conf that trusts every connection
// (a demonstration set-up: anyone who reaches the port is let in), starts postgres in the
// foreground listening on Listen:Port, creates the login role and database named Database,
// and on ctx's end asks postgres for a fast shutdown (SIGINT), escalating to an immediate
// one (SIGQUIT) and SIGKILL when it does not stop in time.
//
// When the process runs as root, initdb and postgres run as the unprivileged system user
// RunAs (PostgreSQL refuses to run as root); DataDir is given to that user, and directories
// above it that the user could not enter get an ACL entry letting that user alone enter them
// (search only, never read); on a filesystem without ACLs, search permission for others.
type PostgresNode struct {
	// DataDir is the cluster directory; created when missing.
	DataDir string
	// Listen is the address postgres listens on (listen_addresses); default 127.0.0.1.
	Listen string
	// Port defaults to 5432.
	Port int
	// Database is the name of the login role and of the database it owns; default skyfleet.
	Database string
	// BinDir holds initdb and postgres; default: the newest /usr/lib/postgresql/*/bin, else
	// the directory of initdb in $PATH.
	BinDir string
	// RunAs is the system user when running as root; default postgres.
	RunAs string
	// Stdout and Stderr receive postgres' own output; nil discards.
	Stdout, Stderr io.Writer
	// Logger is required.
	Logger *slog.Logger
	// StartTimeout bounds the wait for postgres to accept connections; default 60s.
	StartTimeout time.Duration
	// StopTimeout is how long a fast shutdown may take before SIGQUIT; default 6s, so that
	// it and the immediate shutdown fit in the local provider's kill grace.
	StopTimeout time.Duration
	// Ready, when set, is called once the database and role exist.
	Ready func()

	// globBins lists candidate binary directories (tests replace it).
	globBins func() []string
}

// FindPostgresBin returns the directory holding initdb and postgres: dir itself when given,
// else the newest /usr/lib/postgresql/<version>/bin, else the directory of initdb in $PATH.
func FindPostgresBin(dir string) (string, error) {
	return findPostgresBin(dir, func() []string {
		m, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		return m
	})
}

func findPostgresBin(dir string, glob func() []string) (string, error) {
	has := func(d string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			fi, err := os.Stat(filepath.Join(d, b))
			if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%w in %s (want initdb and postgres there); %s", ErrPostgresMissing, dir, PostgresInstallHint)
	}
	cands := glob()
	// Newest major version first: /usr/lib/postgresql/17/bin before .../9.6/bin.
	sort.Slice(cands, func(i, j int) bool { return versionOf(cands[i]) > versionOf(cands[j]) })
	for _, d := range cands {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w (looked in /usr/lib/postgresql/*/bin and $PATH); %s", ErrPostgresMissing, PostgresInstallHint)
}

// versionOf reads the major version from .../postgresql/<v>/bin.
func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// Run initialises (when needed) and runs PostgreSQL until ctx ends or postgres exits.
// It returns nil after a shutdown that ctx asked for.
func (p *PostgresNode) Run(ctx context.Context) error {
	if err := p.defaults(); err != nil {
		return err
	}
	bin, err := findPostgresBin(p.BinDir, p.globBins)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	cred, err := p.credential()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(p.DataDir)
	if err != nil {
		return fmt.Errorf("postgres: data directory %s: %w", p.DataDir, err)
	}
	if err := p.prepareDir(dir, cred); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := p.initdb(ctx, bin, dir, cred); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("postgres: inspect data directory %s: %w", dir, err)
	}
	if err := p.writeConfig(dir, cred); err != nil {
		return err
	}
	return p.serve(ctx, bin, dir, cred)
}

func (p *PostgresNode) defaults() error {
	if p.Logger == nil {
		return errors.New("postgres: no logger")
	}
	if p.DataDir == "" {
		return errors.New("postgres: no data directory")
	}
	if p.Listen == "" {
		p.Listen = "127.0.0.1"
	}
	if net.ParseIP(p.Listen) == nil {
		return fmt.Errorf("postgres: listen address %q is not an IP address", p.Listen)
	}
	if p.Port == 0 {
		p.Port = 5432
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("postgres: port %d is outside 1..65535", p.Port)
	}
	if p.Database == "" {
		p.Database = "skyfleet"
	}
	if p.RunAs == "" {
		p.RunAs = "postgres"
	}
	if p.StartTimeout <= 0 {
		p.StartTimeout = 60 * time.Second
	}
	if p.StopTimeout <= 0 {
		// Fast shutdown plus the immediate one below stay inside the local provider's 10 s
		// grace between SIGTERM and SIGKILL, so postgres always gets to stop itself.
		p.StopTimeout = 6 * time.Second
	}
	if p.Stdout == nil {
		p.Stdout = io.Discard
	}
	if p.Stderr == nil {
		p.Stderr = io.Discard
	}
	if p.globBins == nil {
		p.globBins = func() []string {
			m, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
			return m
		}
	}
	return nil
}

// credential returns the user to run PostgreSQL as: nil when not root.
func (p *PostgresNode) credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(p.RunAs)
	if err != nil {
		return nil, fmt.Errorf("postgres: running as root, PostgreSQL must run as the unprivileged user %q, which does not exist (%w); %s, which creates it", p.RunAs, err, PostgresInstallHint)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres: user %q has a non-numeric uid %q or gid %q", p.RunAs, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("postgres: user %q is root; PostgreSQL refuses to run as root", p.RunAs)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareDir creates dir (mode 0700, as PostgreSQL wants) and, as root, hands it to the
// PostgreSQL user and makes sure that user can reach it.
func (p *PostgresNode) prepareDir(dir string, cred *syscall.Credential) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("postgres: create data directory: %w", err)
	}
	if cred == nil {
		return os.Chmod(dir, 0o700)
	}
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("postgres: give data directory to %s: %w", p.RunAs, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("postgres: data directory mode: %w", err)
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("postgres: inspect %s: %w", d, err)
		}
		if !searchable(fi, cred) && !aclAllows(d, cred.Uid) {
			if err := p.allowSearch(d, fi, cred); err != nil {
				return err
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// allowSearch lets PostgreSQL's user enter d: through an ACL entry for that user alone
// where the filesystem supports ACLs, else by search permission for others (o+x).
func (p *PostgresNode) allowSearch(d string, fi os.FileInfo, cred *syscall.Credential) error {
	changed, err := grantSearch(d, cred.Uid)
	if err == nil {
		if changed {
			p.Logger.Info("allowed PostgreSQL's user to enter a directory above the data directory (ACL entry)",
				"dir", d, "user", p.RunAs)
		}
		return nil
	}
	if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
		return fmt.Errorf("postgres: user %s cannot enter %s, which holds the data directory, and it cannot be allowed to: %w", p.RunAs, d, err)
	}
	p.Logger.Warn("no ACL support: allowed everyone to enter a directory above the data directory (o+x), so that PostgreSQL's user reaches it",
		"dir", d, "user", p.RunAs, "acl_err", err.Error())
	return nil
}

// searchable reports whether the user of cred may enter directory fi.
func searchable(fi os.FileInfo, cred *syscall.Credential) bool {
	perm := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return perm&0o001 != 0
	}
	switch {
	case st.Uid == cred.Uid:
		return perm&0o100 != 0
	case st.Gid == cred.Gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func (p *PostgresNode) command(ctx context.Context, cred *syscall.Credential, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.Stdout = p.Stdout
	cmd.Stderr = p.Stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

// initdb creates the cluster in a sibling directory and renames it into place once
// complete, so that an interrupted initdb never leaves a half-made cluster in dir.
func (p *PostgresNode) initdb(ctx context.Context, bin, dir string, cred *syscall.Credential) error {
	if ents, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("postgres: read data directory: %w", err)
	} else if len(ents) > 0 {
		return fmt.Errorf("postgres: data directory %s holds files but no cluster (no PG_VERSION); empty it or choose another --dir", dir)
	}
	tmp := dir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("postgres: remove the leftover of an interrupted initdb: %w", err)
	}
	if err := p.prepareDir(tmp, cred); err != nil {
		return err
	}
	p.Logger.Info("initialising PostgreSQL cluster", "data_dir", dir, "bin_dir", bin)
	cmd := p.command(ctx, cred, tmp, filepath.Join(bin, "initdb"),
		"--pgdata", tmp, "--username", "postgres", "--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-instructions")
	var out strings.Builder
	cmd.Stdout = io.MultiWriter(p.Stdout, &out)
	cmd.Stderr = io.MultiWriter(p.Stderr, &out)
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("postgres: initdb in %s: %w: %s", tmp, err, lastLines(out.String(), 5))
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("postgres: replace the empty data directory: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("postgres: move the new cluster into place: %w", err)
	}
	return nil
}

// lastLines returns the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// hbaConf trusts every connection: the demo's database holds nothing of value, and its
// clients (app nodes) come from addresses not known in advance.
const hbaConf = `# Written by skyfleet postgres at every start: a DEMONSTRATION set-up that trusts every
# connection. Do not expose this server.
local all all              trust
host  all all 0.0.0.0/0    trust
host  all all ::/0         trust
`

func (p *PostgresNode) writeConfig(dir string, cred *syscall.Credential) error {
	path := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(path, []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("postgres: write %s: %w", path, err)
	}
	if cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("postgres: give %s to %s: %w", path, p.RunAs, err)
		}
	}
	return nil
}

func (p *PostgresNode) serve(ctx context.Context, bin, dir string, cred *syscall.Credential) error {
	// Not CommandContext: the shutdown is ours (SIGINT first), not a SIGKILL.
	cmd := p.command(context.Background(), cred, dir, filepath.Join(bin, "postgres"),
		"-D", dir,
		"-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses="+p.Listen,
		"-c", "unix_socket_directories=",
		"-c", "logging_collector=off",
		"-c", "hba_file="+filepath.Join(dir, "pg_hba.conf"),
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: start server: %w", err)
	}
	p.Logger.Info("PostgreSQL started", "pid", cmd.Process.Pid, "listen", p.Listen, "port", p.Port, "data_dir", dir)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	setupCtx, cancelSetup := context.WithCancel(ctx)
	setupDone := make(chan error, 1)
	go func() { setupDone <- p.setup(setupCtx) }()
	defer cancelSetup()

	for {
		select {
		case err := <-exited:
			cancelSetup()
			if err := <-setupDone; err != nil {
				p.Logger.Debug("set-up ended with the server", "err", err)
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: server exited: %w", exitErr(err))
		case err := <-setupDone:
			setupDone = nil
			if err != nil {
				p.Logger.Error("PostgreSQL set-up failed; stopping it", "err", err)
				p.stop(cmd, exited)
				return err
			}
			p.Logger.Info("PostgreSQL ready", "database", p.Database, "role", p.Database,
				"url", fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", p.Database, net.JoinHostPort(p.Listen, strconv.Itoa(p.Port)), p.Database))
			if p.Ready != nil {
				p.Ready()
			}
		case <-ctx.Done():
			cancelSetup()
			if setupDone != nil {
				if err := <-setupDone; err != nil {
					p.Logger.Debug("set-up cancelled", "err", err)
				}
			}
			p.stop(cmd, exited)
			return nil
		}
	}
}

func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// stop shuts postgres down: SIGINT (fast: roll back open transactions, checkpoint), then
// SIGQUIT (immediate) and SIGKILL if it takes too long. It returns once postgres is gone.
func (p *PostgresNode) stop(cmd *exec.Cmd, exited <-chan error) {
	steps := []struct {
		sig  os.Signal
		wait time.Duration
	}{{syscall.SIGINT, p.StopTimeout}, {syscall.SIGQUIT, 2 * time.Second}, {syscall.SIGKILL, time.Second}}
	for _, s := range steps {
		_ = cmd.Process.Signal(s.sig)
		t := time.NewTimer(s.wait)
		select {
		case err := <-exited:
			t.Stop()
			p.Logger.Info("PostgreSQL stopped", "exit", exitErr(err).Error(), "signal", s.sig.String())
			return
		case <-t.C:
			p.Logger.Warn("PostgreSQL did not stop in time", "signal", s.sig.String(), "waited", s.wait)
		}
	}
	err := <-exited
	p.Logger.Warn("PostgreSQL killed", "exit", exitErr(err).Error())
}

// setup waits for postgres to accept connections, then creates the role and database.
func (p *PostgresNode) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.StartTimeout)
	defer cancel()
	url := fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&connect_timeout=2",
		net.JoinHostPort(p.Listen, strconv.Itoa(p.Port)))
	var conn *pgx.Conn
	for {
		var err error
		conn, err = pgx.Connect(ctx, url)
		if err == nil {
			break
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("postgres: server did not accept connections within %s: %w", p.StartTimeout, err)
		case <-t.C:
		}
	}
	defer func() { _ = conn.Close(context.Background()) }()
	ident := pgx.Identifier{p.Database}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", p.Database).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up role %s: %w", p.Database, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE ROLE "+ident+" LOGIN"); err != nil {
			return fmt.Errorf("postgres: create role %s: %w", p.Database, err)
		}
	}
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", p.Database).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up database %s: %w", p.Database, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" OWNER "+ident); err != nil {
			return fmt.Errorf("postgres: create database %s: %w", p.Database, err)
		}
	}
	return nil
}
