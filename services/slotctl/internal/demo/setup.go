package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slotwatch/slotwatch/services/platform/auth"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
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
	conn, err := pgx.Connect(ctx, serverURL)
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
