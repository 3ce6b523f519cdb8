package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// child is a service the demo started. It runs in a process group of its
// own, so a Ctrl-C in the terminal reaches the demo only, which then stops
// the children in order (the Checker first, while AccountPool and Requests
// can still take its releases).
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	// done is closed when the process has exited; err is its Wait error.
	done chan struct{}
	err  error
}

// supervisor starts and stops the demo's children.
type supervisor struct {
	logDir string
	// started, in order.
	children []*child
	// exited receives each child once, when it exits.
	exited chan *child
}

func newSupervisor(logDir string) *supervisor {
	return &supervisor{logDir: logDir, exited: make(chan *child, 16)}
}

// start runs bin with env added to the demo's own environment, its output
// in logDir/name.log (replaced each run). With tap, every line the child
// writes to stderr is also handed to tap, after it is in the log.
func (s *supervisor) start(name, bin string, env []string, tap func(line []byte)) (*child, error) {
	logPath := filepath.Join(s.logDir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logf.Close() // the child and the tap hold their own descriptors
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()

	var pr, pw *os.File
	if tap != nil {
		if pr, pw, err = os.Pipe(); err != nil {
			return nil, err
		}
		cmd.Stderr = pw
	}
	if err := cmd.Start(); err != nil {
		if pr != nil {
			pr.Close()
			pw.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	if tap != nil {
		pw.Close()
		tlog, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			tlog = nil
		}
		go copyLines(pr, tlog, tap)
	}
	s.children = append(s.children, c)
	go func() {
		c.err = cmd.Wait()
		close(c.done)
		s.exited <- c
	}()
	return c, nil
}

// copyLines copies r to log line by line, handing each line to tap, until
// every writer of the pipe (the child and anything it started) is gone. It
// never stops reading early: a child writing to a pipe nobody reads would
// block.
func copyLines(r *os.File, log *os.File, tap func([]byte)) {
	defer r.Close()
	if log != nil {
		defer log.Close()
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if log != nil {
				_, _ = log.Write(line)
			}
			tap(bytes.TrimRight(line, "\r\n"))
		}
		if err != nil {
			return
		}
	}
}

// exitedEarly says how a child that should still run ended, with the end of
// its log.
func (c *child) exitedEarly() error {
	return fmt.Errorf("%s exited (%v); the end of %s:\n%s", c.name, c.err, c.logPath, tail(c.logPath, 15))
}

// running reports whether the child has not exited.
func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop sends the child SIGTERM and waits up to grace for it to exit, then
// kills its process group. Whatever the child left in its group (a browser)
// is killed too.
func (c *child) stop(grace time.Duration, force <-chan struct{}) {
	if c.running() {
		_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-c.done:
		case <-t.C:
		case <-force:
		}
		t.Stop()
	}
	c.kill()
	<-c.done
}

// kill ends the child's whole process group at once.
func (c *child) kill() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
}

// stopAll stops the children in the reverse order of their start,
// reporting each on out. A closed force skips the grace periods.
func (s *supervisor) stopAll(out io.Writer, grace func(name string) time.Duration, force <-chan struct{}) {
	for i := len(s.children) - 1; i >= 0; i-- {
		c := s.children[i]
		if !c.running() {
			c.kill() // its leftovers, if any
			continue
		}
		fmt.Fprintf(out, "stopping %s ... ", c.name)
		start := time.Now()
		c.stop(grace(c.name), force)
		fmt.Fprintf(out, "%s (%.1fs)\n", exitText(c.err), time.Since(start).Seconds())
	}
}

func exitText(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "stopped"
	case errors.As(err, &ee) && !ee.Exited():
		return "killed (" + ee.String() + ")"
	default:
		return err.Error()
	}
}

// patience lengthens a run's waits (a service ready, SERVING again, an
// invariant coming true) and its Checkers' browser start timeout by its
// factor, for a loaded machine: ChaosConfig.Patience and
// DisciplineConfig.Patience. Below 1 it is 1: the waits as written; above
// maxPatience it is maxPatience.
type patience float64

// maxPatience bounds patience, below testkit's 10, so that TestChaos
// failing in every way still ends inside make test's go test -timeout 25m
// with its report. Each of its 6 scenarios (Short) that fails every
// invariant waits, scaled, for recovery (chaosServing, 60 s), the consumer
// (30 s) and the slot (60 s), 150 s x p, and, as written, its two quiet
// windows (2 x 5 s), the notifier's grace (30 s) and about 10 s of fault:
// 900 s x p + 300 s, plus a minute to set up and stop. At p = 10 that is
// 2 h 36 min; at p = 3, 51 min; only p = 1 (21 min) fits. So the cap
// bounds each wait (a restart's, a recovery's) to 3 times its written
// length, and TestChaos also bounds the whole run by its own deadline
// (chaosTestDeadline): a run still failing then stops and reports the
// scenarios it finished. A scaled wait that the run measures (SERVING
// again within 60 s, the slot found within 60 s) then says "within 60 s x
// p on this machine", a property at most 3 times weaker, not the same one.
const maxPatience = 3

func (p patience) of(d time.Duration) time.Duration {
	switch {
	case !(p > 1): // NaN too
		return d
	case p > maxPatience:
		p = maxPatience
	}
	return time.Duration(float64(d) * float64(p))
}

// checkerStartEnv is the Checkers' CHECKER_BROWSER_START_TIMEOUT: a
// Checker is SERVING only once its browser has started, and a start cut by
// the timeout begins again from nothing, so on a machine too busy to start
// Chromium within it the Checker is never SERVING.
func (p patience) checkerStartEnv() string {
	return "CHECKER_BROWSER_START_TIMEOUT=" + p.of(30*time.Second).String()
}

// waitReady polls ready until it reports true, the child exits, timeout
// passes or ctx ends.
func waitReady(ctx context.Context, c *child, timeout time.Duration, ready func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-c.done:
			return c.exitedEarly()
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%s is not ready after %s; the end of %s:\n%s", c.name, timeout, c.logPath, tail(c.logPath, 15))
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// grpcServing is a readiness probe: the server at addr answers
// grpc.health.v1.Health/Check (the whole server) with SERVING. The
// returned close ends its connection.
func grpcServing(addr string) (ready func(context.Context) bool, closeFn func(), err error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	hc := healthpb.NewHealthClient(conn)
	ready = func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}
	return ready, func() { conn.Close() }, nil
}

// tail is the last n lines of a file, indented, for an error message.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	defer f.Close()
	const max = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
