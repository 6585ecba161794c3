package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// admin talks to Sluice's admin REST API. It is not on the measured path.
type admin struct {
	base   string // http://127.0.0.1:port
	key    string
	client *http.Client
}

// post sends body as JSON and decodes a JSON answer into out (when not nil).
// It returns the status code; a non-2xx status other than those in allowed
// is an error whose text never contains the admin key.
func (a *admin) post(ctx context.Context, path string, body, out any, allowed ...int) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-KEY", a.key)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	for _, s := range allowed {
		if resp.StatusCode == s {
			return s, nil
		}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("POST %s: status %d: %.300s", path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("POST %s: decode: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// modelSeed shapes the benchmark model: how many deployments (all on the
// mock) and extra fields (strategy, hedge, …) merged into its object.
type modelSeed struct {
	deployments int
	extra       map[string]any
}

// seed creates the provider (named "mock", see providerSpec), the benchmark
// model and a fresh Sluice key, and returns the key. Existing provider and
// model (409) are fine. limits, when set, are the key's quota fields
// (rpm, tpm, max_parallel, budget), to measure admission's cost.
func seed(ctx context.Context, a *admin, provider map[string]any, model string, ms modelSeed, limits map[string]any) (string, error) {
	if _, err := a.post(ctx, "/admin/providers", provider, nil, http.StatusConflict); err != nil {
		return "", err
	}
	deps := make([]map[string]any, max(ms.deployments, 1))
	for i := range deps {
		// Prices differ, so the cost-aware strategies have a choice to make.
		deps[i] = map[string]any{
			"provider":              "mock",
			"model":                 model,
			"weight":                1,
			"input_price_per_mtok":  0.15 * (1 + float64(i)/100),
			"output_price_per_mtok": 0.6 * (1 + float64(i)/100),
		}
	}
	m := map[string]any{"name": model, "deployments": deps}
	for k, v := range ms.extra {
		m[k] = v
	}
	if _, err := a.post(ctx, "/admin/models", m, nil, http.StatusConflict); err != nil {
		return "", err
	}
	var key struct {
		Key string `json:"key"`
	}
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	kb := map[string]any{"name": name}
	for k, v := range limits {
		kb[k] = v
	}
	if _, err := a.post(ctx, "/admin/keys", kb, &key); err != nil {
		return "", err
	}
	if key.Key == "" {
		return "", fmt.Errorf("POST /admin/keys: no key in the answer")
	}
	return key.Key, nil
}

// waitRoute sends ep's non-streamed request until it answers 200, so the
// seeded configuration has reached the hot path before measuring.
func waitRoute(ctx context.Context, ep endpoint, timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	url := "http://" + ep.addr + ep.path
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ep.plain))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(ep.authHeader, ep.auth)
		for _, h := range ep.headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := client.Do(req)
		if err == nil {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("status %d: %.300s", resp.StatusCode, data)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 from %s within %s; last: %s", url, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// seedModel creates a provider and a one-deployment model on it (the paced
// model of the open-streams phase). Existing ones (409) are fine.
func seedModel(ctx context.Context, a *admin, provider map[string]any, model string) error {
	if _, err := a.post(ctx, "/admin/providers", provider, nil, http.StatusConflict); err != nil {
		return err
	}
	m := map[string]any{"name": model, "deployments": []map[string]any{{
		"provider": provider["name"], "model": model, "weight": 1,
		"input_price_per_mtok": 0.15, "output_price_per_mtok": 0.6,
	}}}
	_, err := a.post(ctx, "/admin/models", m, nil, http.StatusConflict)
	return err
}
