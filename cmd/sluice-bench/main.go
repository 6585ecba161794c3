package main

import "os"

// roleEnv marks a process started by the harness as a load generator
// ("load") or the bare Go proxy ("goproxy").
const roleEnv = "SLUICE_BENCH_ROLE"

// authEnv carries the Authorization header value to the load process, so the
// key never appears in a process listing.
const authEnv = "SLUICE_BENCH_AUTH"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "load":
			os.Exit(loadMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "goproxy":
			os.Exit(goproxyMain(os.Args[2:], os.Stderr))
		}
	}
	os.Exit(harnessMain(os.Args[1:], os.Stdout, os.Stderr))
}
