package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// keyFileName is the generated encryption key's file inside DataDir.
const keyFileName = "encryption.key"

// parseKey accepts 64 hex characters or base64 (standard or URL, padded or
// not) of 32 bytes. Errors never echo the key.
func parseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("store: encryption key must be 64 hex characters or base64 of 32 bytes")
}

// loadKey returns the AEAD for the configured key, or the one in
// dataDir/encryption.key, generating that file when missing.
func loadKey(configured, dataDir string, log *slog.Logger) (cipher.AEAD, error) {
	var key []byte
	var err error
	if configured != "" {
		key, err = parseKey(configured)
	} else {
		key, err = keyFromFile(dataDir, log)
	}
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}

func keyFromFile(dataDir string, log *slog.Logger) ([]byte, error) {
	path := filepath.Join(dataDir, keyFileName)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := parseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: read encryption key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process generated it first: use theirs.
		return keyFromFile(dataDir, log)
	}
	if err != nil {
		return nil, fmt.Errorf("store: write encryption key: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("store: write encryption key: %w", err)
	}
	log.Warn("SLUICE_ENCRYPTION_KEY is not set: generated an encryption key for provider credentials; back it up, losing it makes stored provider API keys and secrets unreadable",
		"path", path)
	return key, nil
}

// seal encrypts plaintext bound to aad (the provider id for its API key,
// secretAAD for a named secret) and returns base64(nonce || ciphertext).
func (s *Store) seal(plaintext, aad string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return base64.StdEncoding.EncodeToString(out), nil
}

// open reverses seal. Errors say nothing about the content.
func (s *Store) open(enc, aad string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("store: a stored provider credential is malformed")
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], []byte(aad))
	if err != nil {
		return "", errors.New("store: cannot decrypt a provider credential (wrong encryption key?)")
	}
	return string(pt), nil
}
