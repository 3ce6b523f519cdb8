package proctree_test

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/slotwatch/slotwatch/services/platform/proctree"
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

// CPU counts the children a process has reaped: the busy child below has
// exited and been waited for when its parent execs sleep, and its CPU is
// still the tree's.
func TestCPUCountsReapedChildren(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; exec sleep 60`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	deadline := time.Now().Add(time.Minute)
	for {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err != nil {
			t.Fatal(err)
		}
		if string(comm) == "sleep\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the busy child did not finish within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := proctree.Stat(pid)
	if len(st) < 15 || st[13] == "0" && st[14] == "0" {
		t.Fatalf("stat of the parent: %v, want the reaped child's CPU in cutime, cstime", st)
	}
	if got := proctree.CPU(pid); got <= 0 {
		t.Errorf("CPU of the tree = %s, want the busy child's", got)
	}
}

func TestOwnCPUOfThisProcess(t *testing.T) {
	t.Parallel()
	before, name, ok := proctree.OwnCPU(os.Getpid())
	if !ok || name != "proctree.test" {
		t.Fatalf("OwnCPU of this test: %v, %q, %v; want its name proctree.test", before, name, ok)
	}
	// Spin until the kernel has counted a tick of it.
	for {
		after, _, _ := proctree.OwnCPU(os.Getpid())
		if after > before {
			break
		}
		for i := 0; i < 1_000_000; i++ {
			_ = strconv.Itoa(i)
		}
	}
	if _, _, ok := proctree.OwnCPU(1 << 30); ok {
		t.Error("OwnCPU of a pid that cannot exist says ok")
	}
}
