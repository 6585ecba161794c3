package e2e

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

// TestReplicasPostgres runs two gateways on one PostgreSQL schema and checks
// that a key created or revoked on one is honoured by the other within a
// second (test 12), first with PostgreSQL alone, then with Redis fan-out.
func TestReplicasPostgres(t *testing.T) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		testReplicas(t, freshPostgres(t), "")
	})
	t.Run("postgres_redis", func(t *testing.T) {
		dsn := freshPostgres(t)
		testReplicas(t, dsn, redisURL(t))
	})
}

func testReplicas(t *testing.T, dsn, redis string) {
	m := startMock(t)
	shared := gwOptions{DatabaseURL: dsn, RedisURL: redis, AdminKey: randHex(t, 32),
		Env: []string{"SLUICE_ENCRYPTION_KEY=" + randHex(t, 32)}}
	a := startGateway(t, shared)
	b := startGateway(t, shared)

	a.addProvider(t, provider{Name: "mock", BaseURL: m.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
	a.addModel(t, "gpt-4o-mini", "mock")
	created := time.Now()
	k := a.addKey(t, "replica", nil)

	ctx := testCtx(t, 30*time.Second)
	cb := b.client(k.Key)
	var lastErr error
	for {
		_, err := cb.Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hello replica"))
		if err == nil {
			t.Logf("key usable on B %s after creation on A", time.Since(created).Round(time.Millisecond))
			break
		}
		lastErr = err
		if time.Since(created) > time.Second {
			t.Fatalf("key created on A not usable on B within 1s: %v", describe(lastErr))
		}
		time.Sleep(50 * time.Millisecond)
	}

	revoked := time.Now()
	code, body := a.adminDo(t, http.MethodDelete, "/admin/keys/"+k.ID, nil)
	if code/100 != 2 {
		t.Fatalf("DELETE /admin/keys/%s: %d %s", k.ID, code, body)
	}
	for {
		_, err := cb.Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hello again"))
		var apierr *openai.Error
		if errors.As(err, &apierr) && apierr.StatusCode == http.StatusUnauthorized {
			t.Logf("revocation effective on B %s after DELETE on A", time.Since(revoked).Round(time.Millisecond))
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("key revoked on A still accepted by B after 1s (last: %v)", describe(err))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A also refuses it, and usage from B reached the shared database.
	_, err := a.client(k.Key).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "x"))
	wantAPIError(t, err, http.StatusUnauthorized, "invalid_api_key")
	a.waitUsage(t, "key", k.ID, func(r usageRow) bool { return r.Requests >= 1 })
}

// describe renders an SDK error with its status and code.
func describe(err error) string {
	if err == nil {
		return "success"
	}
	var apierr *openai.Error
	if errors.As(err, &apierr) {
		return apierr.Error() + " code=" + apierr.Code + " message=" + apierr.Message
	}
	return err.Error()
}
