package store

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func TestParseKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	for _, s := range []string{testEncKey, base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)} {
		k, err := parseKey(s)
		if err != nil || string(k) != string(raw) {
			t.Fatalf("parseKey(%q) = %x, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "short", strings.Repeat("z", 64), base64.StdEncoding.EncodeToString(raw[:16])} {
		if _, err := parseKey(s); err == nil {
			t.Fatalf("parseKey(%q) accepted", s)
		}
	}
}

func TestOpenGeneratesKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openTest(t, Options{DataDir: dir})
	if _, err := os.Stat(filepath.Join(dir, "sluice.db")); err != nil {
		t.Fatalf("db file: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, keyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	mustProvider(t, s, "p", "sk-secret")
	s.Close()
	// Reopening reads the same key and decrypts.
	s2 := openTest(t, Options{DataDir: dir})
	snap, err := s2.LoadSnapshot(context.Background())
	if err != nil || snap.Providers["p"].APIKey != "sk-secret" {
		t.Fatalf("reopen: %v", err)
	}
	s2.Close()
	// A different key cannot decrypt, and says so without the secret.
	s3 := openTest(t, Options{DataDir: dir, EncryptionKey: testEncKey})
	if _, err := s3.LoadSnapshot(context.Background()); err == nil || strings.Contains(err.Error(), "sk-secret") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestOpenURLs(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"sqlite://" + filepath.Join(dir, "a.db"), "file:" + filepath.Join(dir, "b.db") + "?_pragma=busy_timeout(2000)"} {
		s := openTest(t, Options{URL: u, DataDir: dir, EncryptionKey: testEncKey})
		if s.Dialect() != DialectSQLite {
			t.Fatal(s.Dialect())
		}
	}
	_, err := Open(context.Background(), Options{URL: "mysql://root:hunter2@db/x", DataDir: dir, EncryptionKey: testEncKey})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unsupported URL: %v", err)
	}
	if _, err := Open(context.Background(), Options{DataDir: dir, EncryptionKey: "bad"}); err == nil {
		t.Fatal("bad encryption key accepted")
	}
}

// TestSQLiteConcurrentWrites mixes admin writes, usage batches and reads;
// none may fail with SQLITE_BUSY.
func TestSQLiteConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, Options{DataDir: dir, EncryptionKey: testEncKey})
	b := openTest(t, Options{DataDir: dir, EncryptionKey: testEncKey}) // a second process-like handle
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := 0; w < 4; w++ {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func(w int, s *Store) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := s.CreateProvider(ctx, ProviderInput{Name: strings.Repeat("p", w+1) + string(rune('a'+i)), Type: llm.ProviderOpenAI}); err != nil {
					errs <- err
				}
				if _, err := s.InsertUsage(ctx, benchRecords((w*10+i)*100, 100)); err != nil {
					errs <- err
				}
				if _, err := s.LoadSnapshot(ctx); err != nil {
					errs <- err
				}
			}
		}(w, s)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _ := a.Version(ctx); v != 40 {
		t.Fatalf("version = %d", v)
	}
}
