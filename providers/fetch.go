package providers

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// Limits of the image fetcher.
const (
	// MaxFetchedImages bounds the image URLs one request may make the
	// gateway fetch.
	MaxFetchedImages = 16
	// MaxImageBytes bounds one fetched image, and all the images of one
	// request together (Gemini takes at most 20 MB of inline data).
	MaxImageBytes = 20 << 20
	// ImageFetchTimeout bounds the fetching of all the images of a request.
	ImageFetchTimeout = 10 * time.Second
	// maxImageRedirects bounds the redirects followed for one image.
	maxImageRedirects = 3
	// maxImageURLLen bounds an image URL.
	maxImageURLLen = 8 << 10
)

// ImageFetcher fetches the images a client gave by URL, for providers that
// need their bytes (Gemini, Bedrock). The client chose the URL, so it is
// guarded: private, loopback, link-local (the cloud metadata service) and
// other non-public addresses are refused for every address a name resolves
// to and for every redirect (at most three), no proxy from the environment
// is used, the whole fetch of a request is bounded in time
// (ImageFetchTimeout) and size (MaxImageBytes), and only image/* answers
// are taken. It is safe for concurrent use.
type ImageFetcher struct {
	client  *http.Client
	private bool // non-public addresses allowed (tests only)
	timeout time.Duration
	max     int64
}

// NewImageFetcher returns the fetcher for o. It refuses non-public
// addresses unless o.AllowPrivateImageURLs is set and o.DenyPrivate is not.
func NewImageFetcher(o Options) *ImageFetcher {
	f := &ImageFetcher{private: o.AllowPrivateImageURLs && !o.DenyPrivate, timeout: ImageFetchTimeout, max: MaxImageBytes}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !f.private {
		d.Control = denyPrivateControl
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  ImageFetchTimeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	f.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxImageRedirects {
				return errors.New("too many redirects")
			}
			return f.checkURL(req.URL)
		},
	}
	return f
}

// checkURL refuses what the dialer cannot see: schemes other than http(s),
// credentials in the URL, localhost names and non-public IP literals (the
// dialer checks resolved addresses again).
func (f *ImageFetcher) checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("only http and https image URLs are fetched")
	}
	if u.User != nil {
		return errors.New("image URLs must not contain credentials")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("the image URL has no host")
	}
	if f.private {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || looksNumeric(h) {
		return errDeniedAddr
	}
	if a, err := netip.ParseAddr(h); err == nil && deniedAddr(a) {
		return errDeniedAddr
	}
	return nil
}

// FetchImages returns r with every image given by URL replaced by its
// bytes (base64, as the neutral form carries them) and media type. r is
// not modified: when an image is fetched the result is a copy sharing what
// did not change; when there is none, r itself. A data: URL is decoded
// without a fetch. Errors are client errors (400) naming the image.
func FetchImages(ctx context.Context, f *ImageFetcher, r *llm.ChatRequest) (*llm.ChatRequest, *llm.Error) {
	type ref struct{ msg, part int }
	var refs []ref
	for mi := range r.Messages {
		for pi, p := range r.Messages[mi].Content {
			if p.Type == llm.PartImage && p.Image != nil && p.Image.Data == "" && p.Image.URL != "" {
				refs = append(refs, ref{mi, pi})
			}
		}
	}
	if len(refs) == 0 {
		return r, nil
	}
	if len(refs) > MaxFetchedImages {
		return nil, llm.Errorf(llm.KindInvalidRequest, "at most %d images may be given by URL in one request for this provider", MaxFetchedImages)
	}
	if f == nil {
		return nil, llm.Errorf(llm.KindInvalidRequest, "this provider needs images inline (base64 data: URLs), not by URL")
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	imgs := make([]llm.Image, len(refs))
	errs := make([]error, len(refs))
	var total atomic.Int64
	var wg sync.WaitGroup
	for i, rf := range refs {
		src := r.Messages[rf.msg].Content[rf.part].Image
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgs[i], errs[i] = f.fetch(ctx, src, &total)
			if errs[i] != nil {
				cancel() // one failure fails the request: stop the others
			}
		}()
	}
	wg.Wait()
	if parent.Err() != nil {
		return nil, llm.Errorf(llm.KindCanceled, "client closed the request")
	}
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, f.fetchError(ctx, i, err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, f.fetchError(ctx, i, err)
		}
	}
	out := *r
	out.Messages = append([]llm.Message(nil), r.Messages...)
	copied := map[int]bool{}
	for i, rf := range refs {
		m := &out.Messages[rf.msg]
		if !copied[rf.msg] {
			m.Content = append([]llm.Part(nil), m.Content...)
			copied[rf.msg] = true
		}
		img := imgs[i]
		m.Content[rf.part].Image = &img
	}
	return &out, nil
}

func (f *ImageFetcher) fetchError(ctx context.Context, i int, err error) *llm.Error {
	msg := err.Error()
	switch {
	case errors.Is(err, errDeniedAddr):
		msg = "its address is private, loopback, link-local or otherwise non-public, which this gateway refuses"
	case ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		msg = fmt.Sprintf("it did not arrive within %s", f.timeout)
	}
	e := llm.Errorf(llm.KindInvalidRequest, "image URL %d could not be fetched: %s", i+1, clip(msg, 256))
	e.Code = "invalid_image_url"
	e.Err = err
	return e
}

// fetch fetches one image, adding its size to total (shared by the
// request's images) and failing once total passes the cap.
func (f *ImageFetcher) fetch(ctx context.Context, src *llm.Image, total *atomic.Int64) (llm.Image, error) {
	out := llm.Image{MediaType: src.MediaType, Detail: src.Detail}
	if len(src.URL) > maxImageURLLen {
		return out, errors.New("the URL is too long")
	}
	if rest, ok := cutPrefixFold(src.URL, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mt, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 || !strings.HasPrefix(strings.ToLower(mt), "image/") {
			return out, errors.New("a data: URL must be base64-encoded image data")
		}
		if base64.StdEncoding.DecodedLen(len(data)) > int(f.max) {
			return out, fmt.Errorf("it is larger than %d MiB", f.max>>20)
		}
		if _, err := base64.StdEncoding.DecodeString(data); err != nil {
			return out, errors.New("the data: URL is not valid base64")
		}
		out.MediaType, out.Data = strings.ToLower(mt), data
		return out, nil
	}
	u, err := url.Parse(src.URL)
	if err != nil {
		return out, errors.New("the URL does not parse")
	}
	if err := f.checkURL(u); err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return out, errors.New("the URL is not valid")
	}
	req.Header.Set("Accept", "image/*")
	req.Header.Set("User-Agent", "sluice-image-fetcher")
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			err = ue.Err // the URL is the client's own: no need to repeat it
		}
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("the server answered HTTP %d", resp.StatusCode)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "image/") {
		return out, errors.New("the server did not answer with an image (Content-Type image/*)")
	}
	if resp.ContentLength > f.max || total.Load()+max(resp.ContentLength, 0) > f.max {
		return out, fmt.Errorf("it is larger than %d MiB (all images of a request together)", f.max>>20)
	}
	var buf strings.Builder
	enc := base64.NewEncoder(base64.StdEncoding, &buf)
	chunk := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(chunk)
		if n > 0 {
			if total.Add(int64(n)) > f.max {
				return out, fmt.Errorf("it is larger than %d MiB (all images of a request together)", f.max>>20)
			}
			_, _ = enc.Write(chunk[:n])
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return out, rerr
		}
	}
	_ = enc.Close()
	out.MediaType, out.Data = mt, buf.String()
	return out, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
