package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sluice-ai/sluice/store"
)

// maxIssuersFile bounds the issuers file.
const maxIssuersFile = 1 << 20

// issuersFile is SLUICE_ISSUERS_FILE: {"issuers": [<issuer>, …]}, each
// object exactly as POST /admin/issuers takes it.
type issuersFile struct {
	Issuers []store.IssuerInput `json:"issuers"`
}

// applyIssuersFile creates or replaces, by name, every issuer the file
// lists (issuers it does not list are left alone). A file that does not
// parse or an issuer that does not validate stops the start: an identity
// configuration half applied is worse than none.
func applyIssuersFile(ctx context.Context, st *store.Store, path string, log interface{ Info(string, ...any) }) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("issuers file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIssuersFile+1))
	if err != nil {
		return fmt.Errorf("issuers file: %w", err)
	}
	if len(b) > maxIssuersFile {
		return fmt.Errorf("issuers file %s is larger than %d bytes", path, maxIssuersFile)
	}
	var file issuersFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return fmt.Errorf("issuers file %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("issuers file %s: trailing data after the object", path)
	}
	for i, in := range file.Issuers {
		is, created, err := st.ApplyIssuer(ctx, in)
		if err != nil {
			return fmt.Errorf("issuers file %s: issuers[%d] (%q): %w", path, i, in.Name, err)
		}
		log.Info("issuer from the issuers file", "name", is.Name, "issuer", is.Issuer, "created", created)
	}
	return nil
}
