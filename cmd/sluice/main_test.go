package main

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRunCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "sluice ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	if code := run([]string{"serve", "--no-such-flag"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag exit %d", code)
	}
}

func TestServeRefusesShortAdminKey(t *testing.T) {
	t.Setenv("SLUICE_ADMIN_KEY", "too-short")
	t.Setenv("SLUICE_DATA_DIR", t.TempDir())
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "at least 32 characters") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if strings.Contains(errb.String()+out.String(), "too-short") {
		t.Fatal("the admin key was echoed")
	}
}

func TestMigrate(t *testing.T) {
	t.Setenv("SLUICE_DATA_DIR", t.TempDir())
	var out, errb bytes.Buffer
	for range 2 { // idempotent
		if code := run([]string{"migrate"}, &out, &errb); code != 0 {
			t.Fatalf("migrate exit %d: %s", code, errb.String())
		}
	}
}

// TestMalformedEnvRefused: a malformed setting stops serve (and migrate)
// with the variable and its value named, instead of silently running with
// the default.
func TestMalformedEnvRefused(t *testing.T) {
	bad := []struct{ name, value string }{
		{"SLUICE_MAX_BODY_BYTES", "10MB"},
		{"SLUICE_MAX_BODY_BYTES", "0"},
		{"SLUICE_MAX_BODY_BYTES", "-5"},
		{"SLUICE_MAX_BODY_BYTES", "99999999999999999999"},
		{"SLUICE_SHUTDOWN_TIMEOUT", "abc"},
		{"SLUICE_SHUTDOWN_TIMEOUT", "30"},
		{"SLUICE_SHUTDOWN_TIMEOUT", "-1s"},
		{"SLUICE_MAX_BUFFERED_BYTES", "1GiB"},
		{"SLUICE_MAX_BUFFERED_BYTES", "0"},
		{"SLUICE_MAX_BUFFERED_BYTES", "-1"},
		{"SLUICE_MAX_INFLIGHT", "lots"},
		{"SLUICE_MAX_INFLIGHT", "-1"},
		{"SLUICE_PPROF", "yes"},
		{"SLUICE_PPROF", "TRUE "},
		{"SLUICE_ACCESS_LOG_BODIES", "on"},
	}
	for _, b := range bad {
		for _, cmd := range []string{"serve", "migrate"} {
			t.Run(b.name+"="+b.value+"/"+cmd, func(t *testing.T) {
				t.Setenv("SLUICE_DATA_DIR", t.TempDir())
				t.Setenv(b.name, b.value)
				var out, errb bytes.Buffer
				code := run([]string{cmd, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, &out, &errb)
				if code != 2 || !strings.Contains(errb.String(), b.name) || !strings.Contains(errb.String(), strconv.Quote(b.value)) {
					t.Fatalf("exit %d, stderr %q", code, errb.String())
				}
			})
		}
	}
}

// TestBadFlagValuesRefused: zero or negative values given as flags are
// refused too, rather than meaning the default.
func TestBadFlagValuesRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--max-body-bytes", "0"}, {"--shutdown-timeout", "0s"}, {"--shutdown-timeout", "-3s"}, {"--max-inflight", "-1"},
		{"--max-buffered-bytes", "0"}, {"--max-buffered-bytes", "-1"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"serve"}, args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), "must be") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// TestGoodEnvParsed: the accepted forms reach the configuration.
func TestGoodEnvParsed(t *testing.T) {
	t.Setenv("SLUICE_MAX_BODY_BYTES", "2048")
	t.Setenv("SLUICE_SHUTDOWN_TIMEOUT", "2m")
	t.Setenv("SLUICE_MAX_INFLIGHT", "7")
	t.Setenv("SLUICE_MAX_BUFFERED_BYTES", "4096")
	t.Setenv("SLUICE_PPROF", "1")
	t.Setenv("SLUICE_ACCESS_LOG_BODIES", "true")
	c, _, err := parseConfig("serve", nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBodyBytes != 2048 || c.MaxBufferedBytes != 4096 || c.ShutdownTimeout != 2*time.Minute || c.MaxInFlight != 7 || !c.Pprof || !c.AccessLogBodies {
		t.Fatalf("%+v", c)
	}
	t.Setenv("SLUICE_PPROF", "0")
	t.Setenv("SLUICE_ACCESS_LOG_BODIES", "false")
	if c, _, err = parseConfig("serve", nil, io.Discard); err != nil || c.Pprof || c.AccessLogBodies {
		t.Fatalf("%+v %v", c, err)
	}
}

// TestPreviousAdminKeysFromEnv: SLUICE_ADMIN_KEY_PREVIOUS is a
// comma-separated list; a short entry stops serve without echoing it.
func TestPreviousAdminKeysFromEnv(t *testing.T) {
	a, b := strings.Repeat("a", 32), strings.Repeat("b", 33)
	t.Setenv("SLUICE_ADMIN_KEY", strings.Repeat("k", 32))
	t.Setenv("SLUICE_ADMIN_KEY_PREVIOUS", " "+a+", ,"+b+" ")
	c, _, err := parseConfig("serve", nil, io.Discard)
	if err != nil || len(c.PreviousAdminKeys) != 2 || c.PreviousAdminKeys[0] != a || c.PreviousAdminKeys[1] != b {
		t.Fatalf("PreviousAdminKeys = %d keys, %v", len(c.PreviousAdminKeys), err)
	}
	t.Setenv("SLUICE_ADMIN_KEY_PREVIOUS", "prev-too-short")
	t.Setenv("SLUICE_DATA_DIR", t.TempDir())
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "SLUICE_ADMIN_KEY_PREVIOUS") || strings.Contains(errb.String()+out.String(), "prev-too-short") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// TestCreateAdminKeyCommand: the break-glass command prints a working
// admin key once, to stdout; a bad role or missing arguments fail.
func TestCreateAdminKeyCommand(t *testing.T) {
	t.Setenv("SLUICE_DATA_DIR", t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"create-admin-key", "ops", "admin"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	secret := strings.TrimSpace(out.String())
	if !strings.HasPrefix(secret, "sk-sluice-admin-") || strings.Contains(errb.String(), secret[22:]) {
		t.Fatalf("stdout %d bytes, stderr %q", len(secret), errb.String())
	}
	for _, args := range [][]string{{"create-admin-key", "ops", "root"}, {"create-admin-key", "ops"}, {"create-admin-key"}} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code == 0 || out.Len() != 0 {
			t.Fatalf("%v: exit %d, stdout %q", args, code, out.String())
		}
	}
	t.Setenv("SLUICE_ADMIN_KEY_DISABLED", "yes")
	if code := run([]string{"migrate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "SLUICE_ADMIN_KEY_DISABLED") {
		t.Fatalf("a malformed SLUICE_ADMIN_KEY_DISABLED: exit %d", code)
	}
}
