//go:build !linux

package main

import "syscall"

// childAttr returns no special attributes outside Linux.
func childAttr() *syscall.SysProcAttr { return nil }

// fdLimit returns 0 (unknown) outside Linux.
func fdLimit() uint64 { return 0 }

// masterAttr returns no special attributes outside Linux.
func masterAttr() *syscall.SysProcAttr { return nil }
