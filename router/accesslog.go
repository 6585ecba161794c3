package router

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// AccessLog writes one JSON line per request through a buffer flushed in
// the background, so logging costs no syscall on the request path. It never
// writes credentials or prompt bodies.
type AccessLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	out  io.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewAccessLog starts an access log writing to out; a nil out disables it.
func NewAccessLog(out io.Writer) *AccessLog {
	if out == nil {
		return nil
	}
	l := &AccessLog{w: bufio.NewWriterSize(out, 64<<10), out: out, stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *AccessLog) loop() {
	defer close(l.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
	}
}

func (l *AccessLog) flush() {
	l.mu.Lock()
	_ = l.w.Flush()
	l.mu.Unlock()
}

// Close flushes and stops the log.
func (l *AccessLog) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.once.Do(func() { close(l.stop) })
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *AccessLog) write(rec *llm.Record, path string, overhead time.Duration, body []byte) {
	if l == nil {
		return
	}
	b := make([]byte, 0, 512)
	b = append(b, `{"time":"`...)
	b = rec.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, rec.ID)
	if rec.ClientRequestID != "" {
		b = append(b, `,"client_request_id":`...)
		b = appendJSONString(b, rec.ClientRequestID)
	}
	b = append(b, `,"key_prefix":`...)
	b = appendJSONString(b, rec.KeyPrefix)
	b = append(b, `,"principal":`...)
	b = appendJSONString(b, rec.PrincipalID)
	b = append(b, `,"principal_kind":`...)
	b = appendJSONString(b, rec.PrincipalKind)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, path)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, rec.Model)
	b = append(b, `,"provider":`...)
	b = appendJSONString(b, rec.Provider)
	b = append(b, `,"deployment":`...)
	b = appendJSONString(b, rec.Deployment)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.HTTPStatus), 10)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, rec.Status)
	if rec.ErrorType != "" {
		b = append(b, `,"error_type":`...)
		b = appendJSONString(b, rec.ErrorType)
	}
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, rec.Stream)
	b = append(b, `,"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(rec.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(rec.CompletionTokens), 10)
	b = append(b, `,"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(rec.CacheReadTokens), 10)
	b = append(b, `,"estimated":`...)
	b = strconv.AppendBool(b, rec.Estimated)
	b = append(b, `,"cost_usd":`...)
	b = strconv.AppendFloat(b, float64(rec.CostMicros)/1e6, 'g', -1, 64)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, ms(rec.Latency), 'f', 3, 64)
	b = append(b, `,"ttft_ms":`...)
	b = strconv.AppendFloat(b, ms(rec.TTFT), 'f', 3, 64)
	b = append(b, `,"overhead_ms":`...)
	b = strconv.AppendFloat(b, ms(overhead), 'f', 3, 64)
	if body != nil {
		// body passed parseRequest: valid UTF-8 JSON. Compacted so the
		// line stays one line.
		b = append(b, `,"request_body":`...)
		var cb bytes.Buffer
		if json.Compact(&cb, body) == nil {
			b = append(b, cb.Bytes()...)
		} else {
			b = append(b, "null"...)
		}
	}
	b = append(b, "}\n"...)
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
