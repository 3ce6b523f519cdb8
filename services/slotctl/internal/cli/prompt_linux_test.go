package cli

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slotwatch/slotwatch/services/platform/testkit"
)

// openPTY opens a pseudo-terminal and returns its terminal end, which
// slotctl reads as a user's terminal; both ends close when t ends.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testkit.SkipOutsideCI(t, "no pseudo-terminal: %v", err)
	}
	fail := func(err error) {
		ptmx.Close()
		t.Fatalf("pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		fail(err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		fail(err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		fail(err)
	}
	t.Cleanup(func() {
		ptmx.Close() // first: a read still blocked on tty ends with the hangup
		tty.Close()
	})
	return tty
}

func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return st.Lflag&unix.ECHO != 0
}

// TestPromptEndsOnInterrupt: Ctrl-C at a password prompt (which main's
// signal.NotifyContext turns into the context's end) stops slotctl at
// once, with the terminal's echo back on, instead of waiting for Enter.
func TestPromptEndsOnInterrupt(t *testing.T) {
	t.Parallel()
	tty := openPTY(t)
	if !echoOn(t, tty) {
		t.Fatal("a new terminal echoes")
	}
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	var stdout, stderr testkit.SyncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- Run(ctx, []string{"--accountpool", "127.0.0.1:1", "accounts", "add", "--email", "x@example.com"},
			IO{Stdin: tty, Stdout: &stdout, Stderr: &stderr, IsTerminal: isTerminal})
	}()
	// The prompt is up once echo is off.
	for echoOn(t, tty) {
		select {
		case code := <-exit:
			t.Fatalf("slotctl exited %d without prompting:\n%s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	interrupt()
	select {
	case code := <-exit:
		if code != 1 || !strings.Contains(stderr.String(), "slotctl: interrupted") {
			t.Errorf("exited %d, stderr:\n%s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("slotctl still waits for the password after the interrupt")
	}
	if !echoOn(t, tty) {
		t.Error("the terminal still does not echo after the interrupt")
	}
}
