package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// nodeEmbeddingDims is the mock's default embedding length in TestOpenAINodeSDK.
const nodeEmbeddingDims = 12

// TestOpenAINodeSDK drives the gateway with the official openai npm package:
// it seeds a gateway and runs `node --test` on e2e/node (openai.test.mjs),
// installing the pinned package with `npm ci` first when needed. Without
// node (or npm, when an install is needed) it skips, unless
// SLUICE_REQUIRE_SERVICES=1, then it fails.
func TestOpenAINodeSDK(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		serviceUnavailable(t, "node", err)
	}
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatalf("e2e/node: %v", err)
	}
	ensureNodeModules(t, dir)

	m := startMock(t, "--embedding-dims", strconv.Itoa(nodeEmbeddingDims))
	g := startGateway(t, gwOptions{})
	g.addProvider(t, provider{Name: "mock", BaseURL: m.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
	g.addModel(t, "gpt-4o-mini", "mock")
	g.addModel(t, "text-embedding-3-small", "mock")
	g.addRoute(t, "node-429", m.URL, map[string]string{"X-Mock-Status": "429", "X-Mock-Retry-After": "3"}, nil)
	g.addRoute(t, "node-broken", m.URL, map[string]string{"X-Mock-Disconnect-After": "3"}, nil)
	key := g.addKey(t, "node-sdk", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-timeout=30000", dir+string(filepath.Separator))
	cmd.Dir = filepath.Dir(dir)
	cmd.Env = append(os.Environ(),
		"SLUICE_BASE_URL="+g.Proxy+"/v1",
		"SLUICE_KEY="+key.Key,
		"SLUICE_BAD_KEY=sk-"+randHex(t, 24),
		"SLUICE_CHAT_MODEL=gpt-4o-mini",
		"SLUICE_EMBED_MODEL=text-embedding-3-small",
		"SLUICE_EMBED_DIMS="+strconv.Itoa(nodeEmbeddingDims),
		"SLUICE_RATE_LIMITED_MODEL=node-429",
		"SLUICE_BROKEN_MODEL=node-broken",
		"SLUICE_UNKNOWN_MODEL=no-such-model-"+randHex(t, 4),
		"NO_COLOR=1",
	)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish within 90s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", dir, err, out)
	}
	if testing.Verbose() {
		t.Logf("node --test output:\n%s", out)
	}
}

// ensureNodeModules runs `npm ci` in dir unless the pinned openai package is
// already installed there.
func ensureNodeModules(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err == nil {
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("e2e/node/node_modules: %v", err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		serviceUnavailable(t, "npm (needed to install e2e/node)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefix", dir)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("npm ci --prefix %s did not finish within 3 minutes:\n%s", dir, out)
	}
	if err != nil {
		t.Fatalf("npm ci --prefix %s: %v\n%s", dir, err, out)
	}
}
