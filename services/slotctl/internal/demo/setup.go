package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	rqv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/freeport"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// files are the demo's files under .data/: made when missing, kept between
// runs, all mode 600.
type files struct {
	dir       string // .data
	logs      string // .data/logs: one log per service, replaced each run
	keyset    string // ENCRYPTION_KEYSET_FILE of AccountPool and Requests
	tokens    string // AUTH_TOKENS_FILE of every service: digests only
	admin     string // the admin token alone: data loading, grpcurl, slotctl
	checker   string // the checker token alone: the Checker's AUTH_TOKEN_FILE
	notifier  string // a reader token alone: the Notifier's AUTH_TOKEN_FILE (for Requests)
	artifacts string // CHECKER_ARTIFACTS_DIR
	mail      string // .data/mail: the emails the sink received, one file each, emptied each run
}

func prepareFiles(root string) (files, error) {
	d := filepath.Join(root, ".data")
	f := files{
		dir: d, logs: filepath.Join(d, "logs"), keyset: filepath.Join(d, "keyset.json"),
		tokens: filepath.Join(d, "tokens"), admin: filepath.Join(d, "admin.token"),
		checker: filepath.Join(d, "checker.token"), notifier: filepath.Join(d, "notifier.token"),
		artifacts: filepath.Join(d, "checker-artifacts"), mail: filepath.Join(d, "mail"),
	}
	for _, dir := range []string{f.dir, f.logs, f.artifacts} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return f, err
		}
	}
	if err := makeOnce(f.keyset, secrets.Generate); err != nil {
		return f, fmt.Errorf("keyset: %w", err)
	}
	if err := makeTokens(f); err != nil {
		return f, fmt.Errorf("tokens: %w", err)
	}
	return f, nil
}

// makeTokens makes an admin, a checker and a reader token (the
// Notifier's): their digests in the
// services' tokens file, each token alone in its own file, all mode 600.
// Tokens made by an earlier run are kept, unless a file is missing or the
// tokens file is in the old plaintext format.
func makeTokens(f files) error {
	if b, err := os.ReadFile(f.tokens); err == nil && digestsOnly(b) && nonEmpty(f.admin) && nonEmpty(f.checker) && nonEmpty(f.notifier) {
		return nil
	}
	var lines strings.Builder
	lines.WriteString("# the demo's AUTH_TOKENS_FILE: digests of the tokens in admin.token, checker.token and notifier.token\n")
	for role, path := range map[auth.Role]string{auth.RoleAdmin: f.admin, auth.RoleChecker: f.checker, auth.RoleReader: f.notifier} {
		name := "demo-" + string(role)
		if role == auth.RoleReader {
			name = "demo-notifier"
		}
		c, err := auth.GenerateCaller(role, name)
		if err != nil {
			return err
		}
		if err := writeSecret(path, []byte(c.Token+"\n")); err != nil {
			return err
		}
		lines.WriteString(c.Line() + "\n")
	}
	return writeSecret(f.tokens, []byte(lines.String()))
}

// writeSecret writes b to path with mode 600, even over a file that had
// another mode: the services refuse secrets others could read.
func writeSecret(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

func nonEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() > 0
}

// digestsOnly says whether a tokens file holds digest lines only.
func digestsOnly(b []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "sha256:") {
			return false
		}
		n++
	}
	return n > 0
}

// makeOnce writes gen's output to path, mode 600, unless path already has
// content.
func makeOnce(path string, gen func() ([]byte, error)) error {
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return nil
	}
	b, err := gen()
	if err != nil {
		return err
	}
	return writeSecret(path, b)
}

// freshDatabase drops and creates the database db on the server of
// serverURL and returns its URL. The demo makes its database afresh on each
// run, so every run starts from the same state (no cooldowns, no found
// slots).
func freshDatabase(ctx context.Context, serverURL, db string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connectDirect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("connect to Postgres (DATABASE_URL): %w", err)
	}
	defer conn.Close(context.Background())
	name := pgx.Identifier{db}.Sanitize()
	// FORCE ends the connections of services a killed demo left behind.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop the previous demo database: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create the demo database (set DATABASE_URL to a server where you may create databases): %w", err)
	}
	return withDatabase(serverURL, db)
}

// connectDirect opens one connection to url, as pgx.Connect does but
// without the pool_* settings (pool_max_conns=, which the services' pools
// read): pgx.Connect sends them to the server, which refuses them
// (FATAL: unrecognized configuration parameter).
func connectDirect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	for k := range cfg.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			delete(cfg.RuntimeParams, k)
		}
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// withDatabase is serverURL naming another database; both URL and
// keyword/value forms are accepted.
func withDatabase(serverURL, db string) (string, error) {
	if !strings.Contains(serverURL, "://") {
		return serverURL + " dbname=" + db, nil
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL: %w", err)
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

// portsFree reports the addresses something already listens on, so the
// demo can say so before starting anything.
func portsFree(addrs ...string) error {
	var busy []string
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			busy = append(busy, a)
			continue
		}
		l.Close()
	}
	if len(busy) > 0 {
		return fmt.Errorf("already in use: %s (another make run, or a service started by hand?)", strings.Join(busy, ", "))
	}
	return nil
}

// binaries checks that bin/ holds what the demo runs.
func binaries(binDir string, names ...string) error {
	var missing []error
	for _, n := range names {
		p := filepath.Join(binDir, n)
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			missing = append(missing, fmt.Errorf("%s is missing", p))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w (run make build)", errors.Join(missing...))
	}
	return nil
}

// randomSecret is a webhook secret for this run: 64 hex characters.
func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// host and port are addr's parts ("127.0.0.1:2525").
func host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }

func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// benchStart is what Soak and Discipline start before their Checkers.
type benchStart struct {
	binDir, workDir string
	// serverURL is a Postgres server on which database is made afresh.
	serverURL, database string
	// timings are the run's shortened settings, in every service's
	// environment.
	timings []timing
	// portalEnv is added to portalsim's environment.
	portalEnv []string
	// dataset is loaded once the services are up.
	dataset seed.Dataset
	// ports is how many free loopback ports are left for the Checkers.
	ports int
	// patience lengthens the waits for the services to be ready.
	patience patience
}

// benchSystem is portalsim, AccountPool and Requests running for a
// benchmark, with the dataset loaded; close stops them.
type benchSystem struct {
	files files
	sup   *supervisor
	dbURL string
	// env is every service's environment: database, tokens, keyset,
	// plaintext, the shortened timings.
	env                           []string
	portal                        *seed.Portal
	portalAddr, poolAddr, reqAddr string
	// metrics are the METRICS_ADDR of accountpool and requests.
	metrics map[string]string
	rq      rqv1.RequestsServiceClient
	// loaded is what loading the dataset made: its ids.
	loaded seed.Loaded
	// ports are the free loopback ports left for the Checkers.
	ports []string
	conns []*grpc.ClientConn
}

// startBench checks that the binaries (the Checker's too) are there, makes
// the run's files and database, starts portalsim, AccountPool and Requests
// on free loopback ports, dials them with the admin token and loads the
// dataset.
func startBench(ctx context.Context, b benchStart) (_ *benchSystem, err error) {
	if err := binaries(b.binDir, "portalsim", "accountpool", "requests", "checker"); err != nil {
		return nil, err
	}
	f, err := prepareFiles(b.workDir)
	if err != nil {
		return nil, err
	}
	// portalsim, AccountPool, Requests, their metrics, Requests' JSON
	// gateway, then the Checkers'.
	ports, err := freeport.Loopback(6 + b.ports)
	if err != nil {
		return nil, err
	}
	dbURL, err := freshDatabase(ctx, b.serverURL, b.database)
	if err != nil {
		return nil, err
	}
	s := &benchSystem{
		files: f, sup: newSupervisor(f.logs), dbURL: dbURL,
		env: []string{
			"DATABASE_URL=" + dbURL, "AUTH_TOKENS_FILE=" + f.tokens, "ENCRYPTION_KEYSET_FILE=" + f.keyset,
			"LOG_LEVEL=info", "TLS_CERT_FILE=", "TLS_KEY_FILE=", "TLS_CA_FILE=",
		},
		portalAddr: ports[0], poolAddr: ports[1], reqAddr: ports[2],
		metrics: map[string]string{"accountpool": ports[3], "requests": ports[4]},
		ports:   ports[6:],
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for _, t := range b.timings {
		s.env = append(s.env, t.env+"="+t.demo)
	}
	s.portal = &seed.Portal{BaseURL: "http://" + s.portalAddr, HTTP: &http.Client{Timeout: 30 * time.Second}}
	c, err := s.sup.start("portalsim", filepath.Join(b.binDir, "portalsim"), append([]string{"PORTALSIM_ADDR=" + s.portalAddr, "PORTALSIM_CONFIG="}, b.portalEnv...), nil)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, c, b.patience.of(30*time.Second), s.portal.Ready); err != nil {
		return nil, err
	}
	for _, svc := range []struct{ name, addr string }{{"accountpool", s.poolAddr}, {"requests", s.reqAddr}} {
		env := append(slices.Clone(s.env), "LISTEN_ADDR="+svc.addr, "METRICS_ADDR="+s.metrics[svc.name], "HTTP_ADDR="+ports[5])
		c, err := s.sup.start(svc.name, filepath.Join(b.binDir, svc.name), env, nil)
		if err != nil {
			return nil, err
		}
		if err := waitGRPC(ctx, c, svc.addr, b.patience.of(90*time.Second)); err != nil {
			return nil, err
		}
	}
	poolConn, err := dialAdmin(s.poolAddr, f.admin)
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, poolConn)
	reqConn, err := dialAdmin(s.reqAddr, f.admin)
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, reqConn)
	s.rq = rqv1.NewRequestsServiceClient(reqConn)
	if s.loaded, err = seed.Load(ctx, b.dataset, s.portal, apv1.NewAccountPoolServiceClient(poolConn), s.rq); err != nil {
		return nil, fmt.Errorf("load the data: %w", err)
	}
	return s, nil
}

// checkerEnv is a Checker's environment against the system, driving the
// Chromium at chrome; the caller adds LISTEN_ADDR, METRICS_ADDR and
// CHECKER_ID.
func (s *benchSystem) checkerEnv(chrome string) []string {
	return append(slices.Clone(s.env), "ACCOUNTPOOL_ADDR="+s.poolAddr, "REQUESTS_ADDR="+s.reqAddr,
		"AUTH_TOKEN_FILE="+s.files.checker, "PORTAL_BASE_URL=http://"+s.portalAddr, "CHECKER_ARTIFACTS_DIR="+s.files.artifacts,
		"CHECKER_DRAIN_TIMEOUT="+checkerDrain.String(), "CHROME_PATH="+chrome, "CHROME_NO_SANDBOX="+strconv.FormatBool(os.Geteuid() == 0))
}

// close closes the connections and stops every child, the caller's
// Checkers too.
func (s *benchSystem) close() {
	for i := len(s.conns) - 1; i >= 0; i-- {
		s.conns[i].Close()
	}
	s.sup.stopAll(io.Discard, grace, nil)
}

// shortenedSettings prints a benchmark's timings, with the production
// defaults.
func shortenedSettings(out io.Writer, timings []timing) {
	var ts []string
	for _, t := range timings {
		ts = append(ts, t.env+"="+t.demo+" ["+t.prod+"]")
	}
	fmt.Fprintf(out, "Shortened settings (production defaults in brackets): %s\n", strings.Join(ts, "  "))
}
