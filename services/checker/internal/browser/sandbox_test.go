package browser

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

func TestSandboxRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		euid      int
		noSandbox bool
		refused   bool
	}{
		{0, false, true},
		{0, true, false},
		{10001, false, false},
		{10001, true, false},
	} {
		err := checkSandbox(tc.euid, tc.noSandbox)
		if got := errors.Is(err, ErrRootWithoutNoSandbox); got != tc.refused {
			t.Errorf("euid %d, noSandbox %v: %v, want refused %v", tc.euid, tc.noSandbox, err, tc.refused)
		}
	}
}

func TestStartAsRootWithoutNoSandboxIsRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: the process is not root; TestSandboxRule covers the rule")
	}
	m := New(Config{ExecPath: execPath(t)}) // NoSandbox not set
	defer m.Close()
	err := m.Start(t.Context())
	if !errors.Is(err, ErrRootWithoutNoSandbox) {
		t.Fatalf("Start as root without NoSandbox: %v, want %v", err, ErrRootWithoutNoSandbox)
	}
	if st := m.Status(); st.Running || st.PID != 0 {
		t.Errorf("status = %+v: a browser started", st)
	}
}

// sandboxChildEnv marks the test binary re-executed as a non-root user.
const sandboxChildEnv = "SLOTWATCH_SANDBOX_CHILD"

// TestBrowserRunsSandboxedAsNonRoot starts the browser as the Checker's
// image does, as a user that is not root and without the opt-in, and
// checks that its renderers really are sandboxed: each in a PID namespace
// of its own (Chromium's namespace sandbox, which needs unprivileged user
// namespaces) and under a seccomp-bpf filter. Run as root, the test
// binary runs itself again as the user nobody.
func TestBrowserRunsSandboxedAsNonRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		if os.Getenv(sandboxChildEnv) != "" {
			t.Fatal("the re-executed test still runs as root")
		}
		runAsNonRoot(t, "TestBrowserRunsSandboxedAsNonRoot")
		return
	}
	t.Parallel()
	m := newManager(t, Config{NoSpare: true}) // NoSandbox is false: not root
	tab := open(t, m)
	defer tab.Close(nil)
	if err := chromedp.Do(tab.Context(), chromedp.Navigate(site(t))); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	pid := m.Status().PID
	if cmd := cmdline(pid); strings.Contains(cmd, "--no-sandbox") {
		t.Fatalf("the browser runs with --no-sandbox: %s", cmd)
	}
	renderers := 0
	for _, p := range processTree(pid) {
		if !strings.Contains(cmdline(p), "--type=renderer") {
			continue
		}
		renderers++
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			t.Fatalf("renderer %d: %v", p, err)
		}
		if got := statusField(status, "Seccomp"); got != "2" {
			t.Errorf("renderer %d: Seccomp %q, want 2 (a seccomp-bpf filter)", p, got)
		}
		if ns := strings.Fields(statusField(status, "NSpid")); len(ns) < 2 {
			t.Errorf("renderer %d: NSpid %v, want a PID namespace of its own (the namespace sandbox)", p, ns)
		}
	}
	if renderers == 0 {
		t.Fatalf("no renderer process under browser %d", pid)
	}
	t.Logf("%d renderer(s) of browser %d sandboxed (uid %d)", renderers, pid, os.Geteuid())
}

// runAsNonRoot runs this test binary again, as the user nobody, for the
// test named name only, and fails unless that test passes there.
func runAsNonRoot(t *testing.T, name string) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		testkit.SkipOutsideCI(t, "running as root and there is no user nobody to run Chromium sandboxed as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The binary, the browser's profile and $HOME must be reachable by
	// that user: a directory of its own, not under the test's 0700 one.
	dir, err := os.MkdirTemp("", "slotwatch-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.Chmod(dir, 0o755), os.Chown(home, uid, gid)); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "browser.test")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = []string{sandboxChildEnv + "=1", "HOME=" + home, "TMPDIR=" + home, "PATH=" + os.Getenv("PATH"),
		"CHROME_PATH=" + execPath(t)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatalf("as user nobody (uid %d): %v\n%s", uid, err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "sandboxed (uid") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

// statusField is the value of one field of /proc/<pid>/status.
func statusField(status []byte, name string) string {
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
