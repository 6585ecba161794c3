// Package providers sends requests to model providers. A Provider takes a
// request in OpenAI's wire format and returns the upstream answer in OpenAI's
// wire format (a JSON body, or server-sent events when streaming), so the
// router handles one dialect whatever the upstream speaks. Translating
// families (Anthropic, Gemini, Bedrock) convert on the way in and out;
// OpenAI-compatible upstreams are passed through with as little copying as
// possible.
//
// Providers never import gin, the router, quota or auth, and never estimate
// tokens: usage that the upstream does not report is estimated by the router.
package providers
