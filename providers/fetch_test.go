package providers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

func imageChat(urls ...string) *llm.ChatRequest {
	m := llm.Message{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "look"}}}
	for _, u := range urls {
		m.Content = append(m.Content, llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: u}})
	}
	return &llm.ChatRequest{Model: "m", Messages: []llm.Message{m}}
}

func TestFetcherRefusesNonPublicAddresses(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit = true
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte("x"))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	// The default fetcher refuses loopback even with DenyPrivate off, and
	// AllowPrivateImageURLs is ignored when DenyPrivate is on.
	for _, o := range []Options{{}, {DenyPrivate: true, AllowPrivateImageURLs: true}} {
		f := NewImageFetcher(o)
		for _, u := range []string{
			srv.URL + "/a.png",
			"http://localhost" + port + "/a.png",
			"http://127.1" + port + "/a.png",
			"http://[::1]" + port + "/a.png",
			"http://10.0.0.1/a.png",
			"http://192.168.1.1/a.png",
			"http://169.254.169.254/computeMetadata/v1/",
			"http://[fd00::1]/a.png",
			"http://0.0.0.0" + port + "/a.png",
			"http://2130706433" + port + "/a.png",
			"file:///etc/passwd",
			"gopher://example.com/",
			"http://user:pass@example.com/a.png",
		} {
			_, err := FetchImages(context.Background(), f, imageChat(u))
			if err == nil || err.Status != 400 {
				t.Errorf("%+v: %s fetched (err %v)", o, u, err)
			}
		}
	}
	if hit {
		t.Error("the loopback server was reached")
	}
}

func TestFetcherRedirectToPrivateRefused(t *testing.T) {
	// An allowed fetcher reaches the loopback test server; a refusing one
	// must not follow even a redirect's first hop. The redirect target is
	// re-checked by CheckRedirect and again by the dialer.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect target reached")
	}))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	defer redir.Close()
	// Loopback is allowed for the first hop only (the test server); the
	// redirect is checked as a refusing fetcher checks it.
	f2 := NewImageFetcher(Options{AllowPrivateImageURLs: true})
	f2.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		f2.private = false
		return f2.checkURL(req.URL)
	}
	_, err := FetchImages(context.Background(), f2, imageChat(redir.URL+"/a.png"))
	if err == nil || !strings.Contains(err.Message, "non-public") {
		t.Errorf("redirect to the metadata service: %v", err)
	}
}

func TestFetcherLimits(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/big.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		chunk := make([]byte, 1<<20)
		for i := 0; i < 25; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/declared.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", "30000000")
		_, _ = w.Write([]byte("x"))
	})
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>"))
	})
	mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/missing.png", http.NotFound)
	mux.HandleFunc("/ok.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png; charset=binary")
		_, _ = w.Write([]byte("png"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := NewImageFetcher(Options{AllowPrivateImageURLs: true})
	f.timeout = 300 * time.Millisecond
	for path, want := range map[string]string{
		"/declared.png": "larger than 20 MiB",
		"/page.html":    "did not answer with an image",
		"/slow.png":     "did not arrive within",
		"/missing.png":  "HTTP 404",
	} {
		start := time.Now()
		_, err := FetchImages(context.Background(), f, imageChat(srv.URL+path))
		if err == nil || err.Status != 400 || !strings.Contains(err.Message, want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("%s took %v", path, time.Since(start))
		}
	}
	// A body without Content-Length is cut at the cap.
	big := NewImageFetcher(Options{AllowPrivateImageURLs: true})
	big.max = 2 << 20 // the race detector makes 20 MiB slow
	if _, err := FetchImages(context.Background(), big, imageChat(srv.URL+"/big.png")); err == nil || !strings.Contains(err.Message, "larger than 2 MiB") {
		t.Errorf("big: %v", err)
	}
	var many []string
	for i := 0; i <= MaxFetchedImages; i++ {
		many = append(many, srv.URL+"/ok.png")
	}
	if _, err := FetchImages(context.Background(), f, imageChat(many...)); err == nil || !strings.Contains(err.Message, "at most 16") {
		t.Errorf("too many images: %v", err)
	}
	in := imageChat(srv.URL+"/ok.png", "data:image/gif;base64,R0lGODlh")
	out, err := FetchImages(context.Background(), f, in)
	if err != nil {
		t.Fatal(err)
	}
	if im := out.Messages[0].Content[1].Image; im.Data != "cG5n" || im.MediaType != "image/png" {
		t.Errorf("fetched %+v", im)
	}
	if im := out.Messages[0].Content[2].Image; im.Data != "R0lGODlh" || im.MediaType != "image/gif" {
		t.Errorf("data URL %+v", im)
	}
	if in.Messages[0].Content[1].Image.Data != "" || in.Messages[0].Content[1].Image.URL == "" {
		t.Error("input modified")
	}
	plain := userChat("m", "no images")
	if out, err := FetchImages(context.Background(), f, plain); err != nil || out != plain {
		t.Error("a request without image URLs must come back as it is")
	}
}
