package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// adminKeyCreated is the answer of POST /admin/admin-keys.
type adminKeyCreated struct {
	ID     string `json:"id"`
	Prefix string `json:"prefix"`
	Role   string `json:"role"`
	Key    string `json:"key"`
}

// call sends a request to url with the credential in Authorization:
// Bearer ("" sends none) and returns the status and body.
func call(t testing.TB, method, url, credential string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls GET url with the credential until it answers want, or
// fails after 5 s: a configuration change reaches a replica through its
// poll or the fan-out.
func waitStatus(t testing.TB, url, credential string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := call(t, http.MethodGet, url, credential, nil)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s, want %d within 5s", url, code, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sqliteDump returns every row of every table of the gateway's SQLite file.
func sqliteDump(t testing.TB, dataDir string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "sluice.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dumpDB(t, db, `SELECT name FROM sqlite_master WHERE type = 'table'`)
}

// dumpDB returns every row of every table listQuery names.
func dumpDB(t testing.TB, db *sql.DB, listQuery string) string {
	t.Helper()
	rows, err := db.Query(listQuery)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, tbl := range tables {
		rows, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out.WriteString(tbl)
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&out, " %s=%v", cols[i], v)
			}
			out.WriteByte('\n')
		}
		rows.Close()
	}
	return out.String()
}

// TestAdminKeysAcrossReplicas: two replicas on one PostgreSQL. The
// bootstrap key is being rotated (SLUICE_ADMIN_KEY_PREVIOUS), so both the
// new and the previous key work; an admin key created on one replica works
// on the other with its role (a viewer reads, gets 403 on writes); it is
// refused by the proxy; once revoked it is refused on both.
func TestAdminKeysAcrossReplicas(t *testing.T) {
	t.Parallel()
	db := freshPostgres(t)
	prev := randHex(t, 32)
	env := []string{"SLUICE_ADMIN_KEY_PREVIOUS=" + prev}
	a := startGateway(t, gwOptions{DatabaseURL: db, Env: env})
	b := startGateway(t, gwOptions{DatabaseURL: db, AdminKey: a.AdminKey, Env: env})

	for _, g := range []*gateway{a, b} {
		for _, k := range []string{g.AdminKey, prev} {
			if code, body := call(t, "GET", g.Admin+"/admin/whoami", k, nil); code != 200 || !strings.Contains(body, `"role":"admin"`) {
				t.Fatalf("bootstrap key on %s: %d %s", g.Admin, code, body)
			}
		}
	}
	var v adminKeyCreated
	code, body := call(t, "POST", a.Admin+"/admin/admin-keys", prev, map[string]string{"name": "dash", "role": "viewer"})
	if code != 201 || json.Unmarshal([]byte(body), &v) != nil || !strings.HasPrefix(v.Key, "sk-sluice-admin-") {
		t.Fatalf("create viewer: %d %s", code, body)
	}
	waitStatus(t, b.Admin+"/admin/providers", v.Key, 200)
	if code, body := call(t, "POST", b.Admin+"/admin/keys", v.Key, map[string]string{"name": "x"}); code != 403 || !strings.Contains(body, "insufficient_role") {
		t.Fatalf("viewer write on b: %d %s", code, body)
	}
	if code, _ := call(t, "GET", b.Admin+"/admin/admin-keys", v.Key, nil); code != 403 {
		t.Fatalf("viewer lists admin keys: %d", code)
	}
	if code, _ := call(t, "GET", a.Proxy+"/v1/models", v.Key, nil); code != 401 {
		t.Fatalf("admin key on the proxy: %d", code)
	}
	if code, body := call(t, "DELETE", b.Admin+"/admin/admin-keys/"+v.ID, a.AdminKey, nil); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	waitStatus(t, a.Admin+"/admin/providers", v.Key, 401)
	waitStatus(t, b.Admin+"/admin/providers", v.Key, 401)
	if strings.Contains(a.logs()+b.logs(), v.Key[len(v.Prefix):]) {
		t.Fatal("an admin key in the logs")
	}
}

// TestAdminJWTEndToEnd: an OIDC issuer (RS256, discovery, JWKS) with admin
// settings: its tokens for the admin audience open the admin API with the
// role their groups grant; an expired token, a token for the proxy's
// audience and a token without a known group are 401; an admin token is a
// 401 on the proxy.
func TestAdminJWTEndToEnd(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOptions{})
	idp := startOIDC(t)
	g.adminOK(t, http.MethodPost, "/admin/issuers", map[string]any{
		"name": "corp", "issuer": idp.srv.URL, "audiences": []string{"sluice"}, "algorithms": []string{"RS256"}, "allow_insecure_http": true,
		"admin": map[string]any{"audiences": []string{"sluice-admin"}, "role_claim": "groups", "admin": []string{"ops"}, "viewer": []string{"read"}},
	}, nil)
	tok := func(sub string, edit func(map[string]any)) string {
		return idp.token(t, "r1", sub, func(c map[string]any) {
			c["aud"] = []string{"sluice-admin"}
			if edit != nil {
				edit(c)
			}
		})
	}
	ops := tok("alice", func(c map[string]any) { c["groups"] = []string{"ops"} })
	waitStatus(t, g.Admin+"/admin/whoami", ops, 200)
	if code, body := call(t, "GET", g.Admin+"/admin/whoami", ops, nil); code != 200 || !strings.Contains(body, `"id":"corp:alice"`) || !strings.Contains(body, `"role":"admin"`) {
		t.Fatalf("whoami: %d %s", code, body)
	}
	if code, body := call(t, "POST", g.Admin+"/admin/admin-keys", ops, map[string]string{"name": "sso", "role": "viewer"}); code != 201 || !strings.Contains(body, `"created_by":"corp:alice"`) {
		t.Fatalf("create an admin key with a token: %d %s", code, body)
	}
	read := tok("bob", func(c map[string]any) { c["groups"] = "read" })
	if code, _ := call(t, "GET", g.Admin+"/admin/providers", read, nil); code != 200 {
		t.Fatalf("viewer token read: %d", code)
	}
	if code, _ := call(t, "POST", g.Admin+"/admin/keys", read, map[string]string{"name": "x"}); code != 403 {
		t.Fatalf("viewer token write: %d", code)
	}
	for name, bad := range map[string]string{
		"expired":        tok("alice", func(c map[string]any) { c["groups"] = "ops"; c["exp"] = time.Now().Add(-time.Hour).Unix() }),
		"proxy audience": tok("alice", func(c map[string]any) { c["groups"] = "ops"; c["aud"] = []string{"sluice"} }),
		"no known group": tok("alice", func(c map[string]any) { c["groups"] = []string{"opsx"} }),
	} {
		if code, body := call(t, "GET", g.Admin+"/admin/providers", bad, nil); code != 401 {
			t.Errorf("%s token: %d %s", name, code, body)
		}
	}
	if code, _ := call(t, "GET", g.Proxy+"/v1/models", ops, nil); code != 401 {
		t.Errorf("admin token on the proxy: %d", code)
	}
	if logs := g.logs(); strings.Contains(logs, ops[len(ops)-20:]) {
		t.Error("a token in the logs")
	}
}
