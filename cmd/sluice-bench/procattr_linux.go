package main

import "syscall"

// childAttr makes children die with the harness even if it is killed hard.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
