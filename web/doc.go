// Package web embeds Sluice's token-usage dashboard and serves it under
// /ui/ on the admin listener. The dashboard is hand-written static files in
// dist/ (HTML, one vanilla ES module and one stylesheet) with no build step,
// so go build and go test need no Node. The files hold no data: every call
// the page makes goes to /admin/* with the admin key, which the page keeps
// in sessionStorage only.
package web
