package main

import (
	"errors"
	"os"
	"strconv"
	"time"
)

// server is the process (or process tree) a target's CPU time and memory
// are charged to: the mock for the direct target, nginx's master and its
// workers, the bare Go proxy, or sluice.
type server struct {
	p    *proc
	tree bool // include the children (nginx's workers)
}

// pids returns the process ids the server's resources are summed over.
func (s *server) pids() []int {
	if s == nil || s.p == nil {
		return nil
	}
	root := s.p.pid()
	if !s.tree {
		return []int{root}
	}
	return append([]int{root}, childrenOf(root)...)
}

// cpuTime returns the user+system CPU time its processes have used so far.
func (s *server) cpuTime() (time.Duration, error) {
	var total time.Duration
	var firstErr error
	for _, pid := range s.pids() {
		d, err := cpuTime(pid)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		total += d
	}
	return total, firstErr
}

// memory returns VmRSS and VmHWM summed over its processes. For a process
// tree (nginx) pages shared between the master and the workers are counted
// in each, so the absolute figure is an upper bound; differences (the same
// pages before and after) are not affected.
func (s *server) memory() (Memory, error) {
	var m Memory
	pids := s.pids()
	if len(pids) == 0 {
		return m, errors.New("no process")
	}
	for _, pid := range pids {
		one, err := readMemory(pid)
		if err != nil {
			return Memory{}, err
		}
		m.RSSMiB += one.RSSMiB
		m.HWMMiB += one.HWMMiB
	}
	m.RSSMiB, m.HWMMiB = round1(m.RSSMiB), round1(m.HWMMiB)
	return m, nil
}

// childrenOf returns the processes whose parent is pid, found by scanning
// /proc (nginx's workers; they do not change while nginx runs).
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == pid {
			continue
		}
		if pp, err := ppidOf(n); err == nil && pp == pid {
			out = append(out, n)
		}
	}
	return out
}

// ppidOf reads the parent process id from /proc/<pid>/stat.
func ppidOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parsePPID(b)
}

// parsePPID returns field 4 of a /proc/<pid>/stat line.
func parsePPID(b []byte) (int, error) {
	f, err := statFields(b, 2)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}
