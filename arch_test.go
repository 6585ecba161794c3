package sluice_test

// TestImportArrows keeps docs/DESIGN.md's dependency rules true: which
// packages of the module may import which, and where each third-party
// package may be used.

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sluice-ai/sluice"

// allowed lists, per package, the module packages it may import directly.
var allowed = map[string][]string{
	"llm":        {},
	"auth":       {"llm"},
	"quota":      {"llm", "wire"},
	"wire":       {"llm"},
	"balancer":   {"llm"},
	"providers":  {"llm", "wire"},
	"usage":      {"llm"},
	"store":      {"llm", "migrations"},
	"migrations": {},
	"state":      {"auth", "balancer", "providers", "llm"},
	"router":     {"auth", "quota", "balancer", "providers", "state", "usage", "llm", "wire"},
	"admin":      {"store", "auth", "balancer", "usage", "llm", "web"},
	"server":     {"router", "admin", "store", "auth", "quota", "balancer", "providers", "state", "usage", "llm", "web"},
	"cmd/sluice": {"server"}, // main holds no logic: migrate is server.Migrate
	"web":        {},
}

// thirdParty says which packages may import a third-party module.
var thirdParty = map[string][]string{
	"github.com/gin-gonic/gin":   {"router", "admin"},
	"github.com/redis/go-redis":  {"server", "quota"},
	"github.com/golang-jwt/jwt":  {"auth"},
	"github.com/pkoukk/tiktoken": {"quota"},
	"github.com/jackc/pgx":       {"store"},
	"modernc.org/sqlite":         {"store"},
	// The SigV4 signer of AWS's SDK signs Bedrock calls: request signing
	// is crypto the project does not hand-roll.
	"github.com/aws/aws-sdk-go-v2": {"providers"},
	"github.com/pressly/goose":     {"store"},
}

func TestImportArrows(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		if pkg == "" || strings.HasSuffix(pkg, "_test") {
			continue
		}
		top := pkg
		if !strings.HasPrefix(pkg, "cmd/") {
			top = strings.SplitN(pkg, "/", 2)[0]
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module+"/") {
				dep := strings.TrimPrefix(imp, module+"/")
				if strings.HasPrefix(dep, "cmd/") {
					t.Errorf("%s imports %s: nothing may import cmd", pkg, dep)
					continue
				}
				depTop := strings.SplitN(dep, "/", 2)[0]
				if depTop == top {
					continue
				}
				rules, ok := allowed[top]
				if !ok {
					if strings.HasPrefix(top, "cmd/") || top == "e2e" {
						continue // other commands and test-only packages are free
					}
					t.Errorf("package %s has no import rule; add it to arch_test.go and docs/DESIGN.md", top)
					continue
				}
				if !contains(rules, depTop) {
					t.Errorf("%s imports %s, which docs/DESIGN.md forbids", pkg, dep)
				}
				continue
			}
			for mod, users := range thirdParty {
				if strings.HasPrefix(imp, mod) && !contains(users, top) {
					t.Errorf("%s imports %s; only %v may", pkg, imp, users)
				}
			}
		}
		if top == "llm" {
			for _, imp := range f[1:] {
				if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					t.Errorf("llm imports %s: llm is standard library only", imp)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
