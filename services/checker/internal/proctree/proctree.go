// Package proctree reads a process and the processes under it from Linux's
// /proc: how the Checker's benchmark measures Chromium's CPU and memory,
// and how the browser tests find the processes a browser left behind.
package proctree

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
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
