// Package proctest runs the real service binaries for tests that drive the
// system as it ships, not fakes or another module's internals: TestMain
// builds the binaries once, each test starts the processes it needs, and a
// process is stopped when its test ends, its log shown if the test failed.
package proctest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// RunWithBinaries is a TestMain body: it builds pkgs with `go build` into a
// new temporary directory (pattern names it, as os.MkdirTemp does), points
// *binDir at it, runs the tests and removes the directory. race adds -race,
// so that the services are checked by the race detector too. It returns the
// code for os.Exit; a failed build is 1, with the go tool's output on
// stderr.
func RunWithBinaries(m *testing.M, binDir *string, pattern string, race bool, pkgs ...string) int {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build the services: %v\n", err)
		return 1
	}
	*binDir = dir
	return m.Run()
}

// Config is how Start runs a binary. Its timeouts differ by suite: a
// machine busy with Chromium starts and stops services more slowly.
type Config struct {
	// Env is added to the test process's environment; of two settings of
	// one variable the later wins, so a harness can put the settings it
	// must own (no TLS, say) before or after the test's.
	Env []string
	// Owner is the test whose end stops the process and whose failure
	// shows its log; nil is the test that starts it. A subtest restarting
	// a service for the whole test names the whole test.
	Owner testing.TB
	// ServeTimeout bounds the wait for the "serving gRPC" log line, on a
	// quiet machine: Start lengthens it under load (testkit.Scale).
	ServeTimeout time.Duration
	// StopTimeout bounds the wait for the exit after SIGTERM; then the
	// process is killed.
	StopTimeout time.Duration
	// FailIfKilled fails the owner when the process outlives StopTimeout,
	// for suites where a clean stop is part of what they test.
	FailIfKilled bool
}

// Proc is a service binary running for a test.
type Proc struct {
	Name string
	// Addr is its gRPC address, read from its "serving gRPC" log line, so
	// that it can listen on port 0.
	Addr string
	// Log is its stderr: the service's JSON log lines.
	Log *Log

	cfg     Config
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// Start runs the binary at path and returns once it serves gRPC; it fails t
// if the binary exits first or is not serving within cfg.ServeTimeout. The
// process is stopped (Stop) when cfg.Owner ends, which then fails if the
// log shows a data race, and shows the log if it failed.
func Start(t testing.TB, path string, cfg Config) *Proc {
	t.Helper()
	if cfg.Owner == nil {
		cfg.Owner = t
	}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), cfg.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Name: filepath.Base(path), Log: &Log{}, cfg: cfg, cmd: cmd, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := p.Log.add(sc.Bytes())
			if line["msg"] == "serving gRPC" {
				if a, _ := line["addr"].(string); a != "" {
					select {
					case addrc <- a:
					default:
					}
				}
			}
		}
	}()
	go func() {
		// Wait closes the pipe: read it to the end first.
		<-scanned
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	owner := cfg.Owner
	owner.Cleanup(func() {
		p.Stop()
		// Only a binary built with -race writes this.
		if strings.Contains(p.Log.Text(), "WARNING: DATA RACE") {
			owner.Errorf("%s: the race detector found a data race", p.Name)
		}
		if owner.Failed() {
			owner.Logf("%s log:\n%s", p.Name, p.Log.Text())
		}
	})
	serve := testkit.Scale(cfg.ServeTimeout)
	select {
	case p.Addr = <-addrc:
		return p
	case <-p.exited:
		t.Fatalf("%s exited before serving: %v\n%s", p.Name, p.exitErr, p.Log.Text())
	case <-time.After(serve):
		t.Fatalf("%s did not serve within %v\n%s", p.Name, serve, p.Log.Text())
	}
	return nil
}

// Stop sends SIGTERM, as an orchestrator would, and waits for the exit;
// after cfg.StopTimeout it kills the process. Stopping a process that has
// exited does nothing.
func (p *Proc) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(p.cfg.StopTimeout):
		if p.cfg.FailIfKilled {
			p.cfg.Owner.Errorf("%s did not stop within %v of SIGTERM; killing it", p.Name, p.cfg.StopTimeout)
		}
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for the
// exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// ExitErr waits for the process to exit and returns how it ended: nil for
// a clean exit.
func (p *Proc) ExitErr() error {
	<-p.exited
	return p.exitErr
}

// Log keeps a process's log: the raw text to show, and the JSON lines
// parsed, for tests about what the service logged.
type Log struct {
	mu    sync.Mutex
	raw   bytes.Buffer
	lines []map[string]any
}

func (l *Log) add(b []byte) map[string]any {
	var line map[string]any
	_ = json.Unmarshal(b, &line)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw.Write(b)
	l.raw.WriteByte('\n')
	if line != nil {
		l.lines = append(l.lines, line)
	}
	return line
}

// Text is the log so far, as the process wrote it.
func (l *Log) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// With returns the JSON lines so far with this msg.
func (l *Log) With(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range l.lines {
		if line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}
