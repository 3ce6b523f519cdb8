// Package proctree reads a process and the processes under it from Linux's
// /proc: how the benchmarks measure the CPU and memory of a Checker with
// its Chromium, and how the browser tests find the processes a browser
// left behind.
package proctree

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Process is one process as a scan of /proc saw it.
type Process struct {
	PID int
	// Stat is /proc/PID/stat after the command name: state, ppid, pgrp, ...
	// (fields 3 and on as proc(5) numbers them, so Stat[1] is the ppid).
	Stat []string
}

// Stat is /proc/PID/stat after the command name (see Process.Stat), or nil
// when the process is gone. The name may hold spaces and parentheses, so
// the fields start after the last ')'.
func Stat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// Tree is pid and every process under it, pid first and then its
// descendants breadth first, each with the stat fields one scan of /proc
// read. It is empty when pid is gone.
func Tree(pid int) []Process {
	stats := map[int][]string{}
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := Stat(p); len(f) > 1 {
			stats[p] = f
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var tree []Process
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		p := queue[0]
		if f, ok := stats[p]; ok {
			tree = append(tree, Process{PID: p, Stat: f})
			queue = append(queue, children[p]...)
		}
	}
	return tree
}

// CPU is the user and system CPU time of pid and every process under it,
// those that have exited included: a process's stat counts the CPU of the
// children it has reaped (cutime, cstime), and Chromium's zygotes start and
// reap the renderers and the GPU process. Read it before the browser is
// killed: its zygotes are then orphans that nobody in the tree reaps, which
// is why the rusage of a Checker's reaped children misses the renderers
// and the GPU process. A difference of two reads is the tree's CPU in
// between (a process that exited and was reaped meanwhile moved from its
// own fields to its parent's).
func CPU(pid int) time.Duration {
	var ticks int64
	for _, p := range Tree(pid) {
		f := p.Stat
		if len(f) < 15 {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// OwnCPU is the user and system CPU time pid has used itself (its reaped
// children not counted) and its command name; ok is false when pid is
// gone. A difference of two reads is the process's CPU in between.
func OwnCPU(pid int) (cpu time.Duration, name string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if err != nil || open < 0 || end < open {
		return 0, "", false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return 0, "", false
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // stime
	return time.Duration(ut+st) * time.Second / clockTicks, string(b[open+1 : end]), true
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat times.
const clockTicks = 100
