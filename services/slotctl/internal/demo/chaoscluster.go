package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/platform/freeport"
)

// pgCluster is the chaos suite's own Postgres server, which it restarts:
// the shared server of the tests must never be stopped. It runs as the
// postgres OS user when the suite runs as root (Postgres refuses root),
// from a directory that user owns.
type pgCluster struct {
	bindir, dir string
	port        int
	asPG        []string
}

// newCluster initdbs a cluster in a new directory and starts it.
func newCluster(ctx context.Context, maxConnections int) (*pgCluster, error) {
	bindir, err := pgBindir()
	if err != nil {
		return nil, err
	}
	c := &pgCluster{bindir: bindir}
	parent := ""
	if os.Geteuid() == 0 {
		// The postgres user must reach the directory: not under a mode-700
		// home or test directory.
		parent = "/var/tmp"
		c.asPG = []string{"runuser", "-u", "postgres", "--"}
	}
	if c.dir, err = os.MkdirTemp(parent, "slotwatch-chaos-pg-"); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, Postgres needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return nil, err
		}
	}
	addrs, err := freeport.Loopback(1)
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addrs[0], ":")
	c.port, _ = strconv.Atoi(port)
	if err := c.run(ctx, "initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		c.remove()
		return nil, err
	}
	// fsync off is safe here, as no scenario crashes the OS; commits stay
	// synchronous, or an immediate shutdown would lose acknowledged ones.
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = ''\nmax_connections = %d\n"+
		"shared_buffers = 64MB\nfsync = off\nfull_page_writes = off\n", c.port, maxConnections)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		f.Close()
	}
	if err != nil {
		c.remove()
		return nil, fmt.Errorf("configure the cluster: %w", err)
	}
	if err := c.start(ctx); err != nil {
		c.remove()
		return nil, err
	}
	return c, nil
}

// pgBindir is the newest PostgreSQL server's bin directory.
func pgBindir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server under /usr/lib/postgresql (deploy/local/with-postgres.sh installs it)")
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) run(ctx context.Context, tool string, args ...string) error {
	argv := append(slices.Clone(c.asPG), filepath.Join(c.bindir, tool))
	argv = append(argv, args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60", "start")
}

// stop stops the server with a pg_ctl shutdown mode: fast (clients are
// disconnected, a clean shutdown) or immediate (no shutdown checkpoint:
// crash recovery at the next start).
func (c *pgCluster) stop(ctx context.Context, mode string) error {
	return c.run(ctx, "pg_ctl", "-D", c.data(), "-m", mode, "-w", "stop")
}

// remove stops the server and deletes its files.
func (c *pgCluster) remove() {
	_ = c.stop(context.Background(), "immediate")
	_ = os.RemoveAll(c.dir)
}

// addr is the server's host:port.
func (c *pgCluster) addr() string { return "127.0.0.1:" + strconv.Itoa(c.port) }

// url is db on the server, reached at addr (the server, or a proxy to it).
func pgURL(addr, db string) string {
	return "postgres://postgres@" + addr + "/" + db + "?sslmode=disable"
}

// createDatabase makes db on the cluster.
func (c *pgCluster) createDatabase(ctx context.Context, db string) error {
	conn, err := pgx.Connect(ctx, pgURL(c.addr(), "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	return err
}
