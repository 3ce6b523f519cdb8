package proctree_test

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/checker/internal/proctree"
)

func TestTreeHoldsTheChildrenOfAProcess(t *testing.T) {
	t.Parallel()
	// A shell whose child sleeps: the sleep is a grandchild of this test.
	cmd := exec.Command("sh", "-c", "sleep 60 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	sh := cmd.Process.Pid
	var tree []proctree.Process
	for range 200 { // until the shell has started its child
		if tree = proctree.Tree(sh); len(tree) >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(tree) != 2 || tree[0].PID != sh || tree[1].Stat[1] != strconv.Itoa(sh) {
		t.Fatalf("tree of the shell %d: %+v, want the shell and its sleep", sh, tree)
	}

	self := proctree.Tree(os.Getpid())
	if len(self) < 3 || self[0].PID != os.Getpid() {
		t.Errorf("tree of this process: %+v, want it first, then the shell and the sleep", self)
	}
	if got := proctree.Stat(sh); len(got) < 2 || got[1] != strconv.Itoa(os.Getpid()) {
		t.Errorf("stat of the shell: %v, want this process as its parent", got)
	}
}

func TestGoneProcessHasNoTree(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if tree := proctree.Tree(cmd.Process.Pid); len(tree) != 0 {
		t.Errorf("tree of a reaped process: %+v", tree)
	}
	if st := proctree.Stat(cmd.Process.Pid); st != nil {
		t.Errorf("stat of a reaped process: %v", st)
	}
}
