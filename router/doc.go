// Package router serves the proxy listener: the OpenAI-compatible /v1
// endpoints, with authentication, deployment choice and fallback, the relay
// of JSON and server-sent-event answers, usage accounting, metrics and the
// access log. It is the only place that renders errors for model clients.
package router
