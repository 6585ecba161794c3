package main

import (
	"bytes"
	"strings"
	"testing"
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
