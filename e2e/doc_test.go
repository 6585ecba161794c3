// Package e2e holds Sluice's end-to-end tests: they build cmd/sluice and
// cmd/mockllm, start them as processes on loopback ports and talk to the
// gateway with the official openai-go SDK and the admin REST API.
//
// Run with:
//
//	go test ./e2e/
//
// PostgreSQL and Redis tests read SLUICE_TEST_DATABASE_URL and
// SLUICE_TEST_REDIS_URL; they skip when the service is unreachable unless
// SLUICE_REQUIRE_SERVICES=1.
package e2e
