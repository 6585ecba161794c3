package providers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// Client is the HTTP transport of one provider: its own connection pool and
// timeouts. The first-byte timeout is enforced by the transport
// (ResponseHeaderTimeout); the idle timeout between stream chunks is
// enforced by the reader of the body. Calls go straight to RoundTrip, so no
// redirect is ever followed: a redirect could carry the provider key to
// another host.
type Client struct {
	tr *http.Transport
	t  llm.Timeouts // with defaults filled in
	// images fetches image URLs for providers that need the bytes.
	images *ImageFetcher
}

// maxResponseHeaderBytes bounds an upstream's response headers.
const maxResponseHeaderBytes = 256 << 10

// NewClient returns a client with t's timeouts (defaults filled in). With
// o.DenyPrivate its dialer refuses non-public addresses after resolution.
func NewClient(t llm.Timeouts, o Options) *Client {
	t = t.WithDefaults()
	d := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	if o.DenyPrivate {
		d.Control = denyPrivateControl
	}
	tr := &http.Transport{
		Proxy:                 nil, // never route provider traffic through an env proxy implicitly
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   t.Connect,
		ResponseHeaderTimeout: t.FirstByte,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		// net/http's default 4 KiB each: a streamed answer holds its
		// connection's buffers for as long as it lasts (16 KiB each cost
		// 24 KiB more per open stream), and a read or write larger than
		// the buffer bypasses it anyway.
		WriteBufferSize:        4 << 10,
		ReadBufferSize:         4 << 10,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	return &Client{tr: tr, t: t, images: NewImageFetcher(o)}
}

// Timeouts returns the client's timeouts, defaults filled in.
func (c *Client) Timeouts() llm.Timeouts { return c.t }

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() {
	c.tr.CloseIdleConnections()
	if c.images != nil {
		c.images.client.CloseIdleConnections()
	}
}

// Images returns the client's guarded image fetcher.
func (c *Client) Images() *ImageFetcher { return c.images }

// classify turns a transport error into a gateway error.
func classify(ctx context.Context, provider string, err error) *llm.Error {
	var e *llm.Error
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		e = llm.Errorf(llm.KindCanceled, "client closed the request")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		e = llm.Errorf(llm.KindTimeout, "upstream %s timed out", provider)
	default:
		e = llm.Errorf(llm.KindUnreachable, "upstream %s unreachable", provider)
		if errors.Is(err, syscall.ECONNREFUSED) {
			e.Message = "upstream " + provider + " refused the connection"
		}
	}
	e.Provider = provider
	e.Err = err
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
