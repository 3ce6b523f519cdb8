package demo

import (
	"bufio"
	"bytes"
	"context"
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
	tokens    string // AUTH_TOKENS_FILE of every service
	admin     string // the admin token alone: data loading, grpcurl, slotctl
	checker   string // "checker <token>": the Checker's AUTH_TOKEN_FILE
	artifacts string // CHECKER_ARTIFACTS_DIR
}

func prepareFiles(root string) (files, error) {
	d := filepath.Join(root, ".data")
	f := files{
		dir: d, logs: filepath.Join(d, "logs"), keyset: filepath.Join(d, "keyset.json"),
		tokens: filepath.Join(d, "tokens"), admin: filepath.Join(d, "admin.token"),
		checker: filepath.Join(d, "checker.token"), artifacts: filepath.Join(d, "checker-artifacts"),
	}
	for _, dir := range []string{f.dir, f.logs, f.artifacts} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return f, err
		}
	}
	if err := makeOnce(f.keyset, secrets.Generate); err != nil {
		return f, fmt.Errorf("keyset: %w", err)
	}
	if err := makeOnce(f.tokens, func() ([]byte, error) {
		var b bytes.Buffer
		err := auth.GenerateTokens(&b)
		return b.Bytes(), err
	}); err != nil {
		return f, fmt.Errorf("tokens: %w", err)
	}
	raw, err := os.ReadFile(f.tokens)
	if err != nil {
		return f, err
	}
	toks := roleTokens(raw)
	for _, role := range []string{"admin", "checker"} {
		if toks[role] == "" {
			return f, fmt.Errorf("%s has no %s token: delete it and the demo makes a new one", f.tokens, role)
		}
	}
	if err := os.WriteFile(f.admin, []byte(toks["admin"]+"\n"), 0o600); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.checker, []byte("checker "+toks["checker"]+"\n"), 0o600); err != nil {
		return f, err
	}
	return f, nil
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
	return os.WriteFile(path, b, 0o600)
}

// roleTokens reads the first token of each role from a tokens file
// ("role token" lines, # comments).
func roleTokens(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") && out[f[0]] == "" {
			out[f[0]] = f[1]
		}
	}
	return out
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
