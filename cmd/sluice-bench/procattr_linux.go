package main

import "syscall"

// fdLimit returns the open-file limit (soft) this process runs with, which
// its children inherit; Go programs raise their own soft limit to the hard
// one at start, as this one did. 0 when unknown.
func fdLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}

// childAttr makes children die with the harness even if it is killed hard.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// masterAttr sends a child SIGTERM when the harness dies, for a master
// process (nginx) that must stop its own children: killed outright, it
// would leave its workers running.
func masterAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
