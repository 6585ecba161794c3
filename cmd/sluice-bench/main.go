package main

import "os"

// roleEnv marks a process started by the harness as a load generator.
const roleEnv = "SLUICE_BENCH_ROLE"

// authEnv carries the Authorization header value to the load process, so the
// key never appears in a process listing.
const authEnv = "SLUICE_BENCH_AUTH"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(loadMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(harnessMain(os.Args[1:], os.Stdout, os.Stderr))
}
