package quota

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed redis.lua
var redisScript string

// RedisOptions configure a Redis store.
type RedisOptions struct {
	// Prefix starts every key; default "sluice:q:". It must not contain
	// braces (they would become the keys' Cluster hash tag).
	Prefix string
	// Split runs one script per subject instead of one for all of an
	// admission's subjects, for a Redis Cluster where the subjects live
	// in different slots. The per-subject scripts go in one pipelined
	// round trip; when one subject refuses, the others' takes are undone
	// by a second round trip. It is set for a *redis.ClusterClient.
	Split bool
	// Clock is for tests only: when set, its time is passed to the script;
	// otherwise the script reads the Redis server's TIME, so that the
	// replicas' clocks do not matter.
	Clock func() time.Time
}

// Redis is the Store every replica shares: one Lua script (redis.lua) per
// admission, so that concurrent admissions on any replica never
// over-admit. Time is the Redis server's.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	split  bool
	clock  func() time.Time
	script *redis.Script
}

var _ Store = (*Redis)(nil)

// NewRedis returns the Redis store on c.
func NewRedis(c redis.UniversalClient, o RedisOptions) *Redis {
	if o.Prefix == "" {
		o.Prefix = "sluice:q:"
	}
	if _, ok := c.(*redis.ClusterClient); ok {
		o.Split = true
	}
	return &Redis{c: c, prefix: o.Prefix, split: o.Split, clock: o.Clock, script: redis.NewScript(redisScript)}
}

// unavailable wraps a Redis failure in ErrUnavailable. go-redis errors
// name commands and addresses, never the password.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
}

// nowArg is the script's time argument: "" for the server's TIME.
func (r *Redis) nowArg() any {
	if r.clock == nil {
		return ""
	}
	return r.clock().UnixMicro()
}

func (r *Redis) keys(s *Subject) []string {
	h := r.prefix + s.Tag()
	return []string{h, h + ":r"}
}

func paramArgs(a []any, p *params) []any {
	return append(a, p.rpm, p.tpm, p.par, p.usd, p.tok, p.code)
}

// call is one script call: its keys and arguments.
type call struct {
	keys []string
	args []any
}

// run runs the calls, one EVALSHA each, pipelined in one round trip when
// there are several; a NOSCRIPT answer (a restarted or flushed Redis) is
// retried with EVAL, for those calls only.
func (r *Redis) run(ctx context.Context, calls []call) ([][]any, error) {
	out := make([][]any, len(calls))
	if len(calls) == 1 {
		v, err := r.script.Run(ctx, r.c, calls[0].keys, calls[0].args...).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		if out[0], err = asList(v); err != nil {
			return nil, err
		}
		return out, nil
	}
	cmds := make([]*redis.Cmd, len(calls))
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = r.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var retry []int
	for i, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range retry {
				cmds[i] = r.script.Eval(ctx, p, calls[i].keys, calls[i].args...)
			}
			return nil
		})
	}
	var first error
	for i, c := range cmds {
		v, err := c.Result()
		if err == nil {
			out[i], err = asList(v)
		}
		if err != nil && first == nil {
			first = unavailable(err)
		}
	}
	if first != nil {
		return out, first
	}
	return out, nil
}

// undoTimeout bounds split mode's undo of a refused admission.
const undoTimeout = 5 * time.Second

var errGarbage = errors.New("unexpected script answer")

func asList(v any) ([]any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, unavailable(errGarbage)
	}
	return l, nil
}

// reader reads integers from a script's answer; the first missing or
// wrong element sets err and every later read returns 0.
type reader struct {
	v   []any
	i   int
	err error
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	if r.i >= len(r.v) {
		r.err = unavailable(errGarbage)
		return 0
	}
	x, ok := r.v[r.i].(int64)
	if !ok {
		r.err = unavailable(errGarbage)
		return 0
	}
	r.i++
	return x
}

// intIn is int bounded to [lo, hi]; outside is garbage.
func (r *reader) intIn(lo, hi int64) int64 {
	x := r.int()
	if r.err == nil && (x < lo || x > hi) {
		r.err = unavailable(errGarbage)
		return 0
	}
	return x
}

func (r *reader) raw() rawState {
	var s rawState
	s.rpmRem, s.rpmReset = r.int(), r.int()
	s.tpmRem, s.tpmReset = r.int(), r.int()
	s.inUse, s.spentMicros, s.reservedMicros = r.int(), r.int(), r.int()
	s.spentTokens, s.reservedTokens = r.int(), r.int()
	s.missing = r.intIn(0, 1) == 1
	return s
}

func (r *reader) done() error {
	if r.err == nil && r.i != len(r.v) {
		r.err = unavailable(errGarbage)
	}
	return r.err
}

// took is what an admission took from one subject (split mode undoes
// it), and whether it created the rpm and tpm buckets (1).
type took struct{ req, tok, par, micros, tokens, rpmNew, tpmNew int64 }

func (r *reader) took() took {
	return took{r.int(), r.int(), r.int(), r.int(), r.int(), r.intIn(0, 1), r.intIn(0, 1)}
}

// admitted is one admit script's answer.
type admitted struct {
	allowed bool
	denied  int
	code    int
	retry   int64
	now     int64
	need    []int
	raws    []rawState
	took    []took
}

func parseAdmit(v []any, n int) (admitted, error) {
	r := &reader{v: v}
	var a admitted
	a.allowed = r.intIn(0, 1) == 1
	a.denied = int(r.intIn(-1, int64(n)-1))
	a.code = int(r.intIn(0, codeTokens))
	a.retry = r.int()
	a.now = r.int()
	nn := int(r.intIn(0, int64(n)))
	for range nn {
		a.need = append(a.need, int(r.intIn(0, int64(n)-1)))
	}
	a.raws = make([]rawState, n)
	a.took = make([]took, n)
	for i := range n {
		a.raws[i] = r.raw()
		a.took[i] = r.took()
	}
	if err := r.done(); err != nil {
		return admitted{}, err
	}
	if !a.allowed && len(a.need) == 0 && (a.denied < 0 || a.code == codeNone) {
		return admitted{}, unavailable(errGarbage)
	}
	return a, nil
}

func (r *Redis) admitArgs(id string, ttl int64, ch *charge, ps []params) []any {
	par := int64(0)
	if ch.par {
		par = 1
	}
	a := make([]any, 0, 9+len(ps)*6)
	a = append(a, "admit", r.nowArg(), id, ttl, ch.req, ch.tok, ch.cost, par, len(ps))
	for i := range ps {
		a = paramArgs(a, &ps[i])
	}
	return a
}

// Admit implements Store: one EVALSHA for all subjects (split mode: one
// pipelined round trip of one script per subject, and a second one to
// undo the takes when a subject refuses).
func (r *Redis) Admit(ctx context.Context, req *AdmitRequest) (Decision, error) {
	n := len(req.Subjects)
	ps := make([]params, n)
	for i := range req.Subjects {
		ps[i] = paramsOf(&req.Subjects[i])
	}
	ch := chargeOf(&req.Charge)
	id := reservationID(req.ID)
	ttl := ttlMicros(req.TTL)
	if n == 0 {
		now := r.clock
		if now == nil {
			now = time.Now
		}
		return Decision{Allowed: true, Denied: -1, Now: now().UTC(), States: []State{}}, nil
	}
	if !r.split || n == 1 {
		keys := make([]string, 0, 2*n)
		for i := range req.Subjects {
			keys = append(keys, r.keys(&req.Subjects[i])...)
		}
		res, err := r.run(ctx, []call{{keys, r.admitArgs(id, ttl, &ch, ps)}})
		if err != nil {
			return Decision{Denied: -1}, err
		}
		a, err := parseAdmit(res[0], n)
		if err != nil {
			return Decision{Denied: -1}, err
		}
		d := Decision{Allowed: a.allowed, Denied: a.denied, Now: time.UnixMicro(a.now).UTC(), States: make([]State, n)}
		if len(a.need) > 0 {
			d.Allowed, d.Denied = false, -1
			d.needSeed(ps, a.need)
		} else if !a.allowed {
			d.Limit, d.RetryAfter = limitOfCode[a.code], micros(a.retry)
		}
		for i := range a.raws {
			d.States[i] = a.raws[i].state(&ps[i], d.Now)
		}
		return d, nil
	}
	return r.admitSplit(ctx, req, ps, &ch, id, ttl)
}

func (r *Redis) admitSplit(ctx context.Context, req *AdmitRequest, ps []params, ch *charge, id string, ttl int64) (Decision, error) {
	n := len(ps)
	calls := make([]call, n)
	for i := range req.Subjects {
		calls[i] = call{r.keys(&req.Subjects[i]), r.admitArgs(id, ttl, ch, ps[i:i+1])}
	}
	res, runErr := r.run(ctx, calls)
	as := make([]admitted, n)
	var need []int
	denied, failed := -1, false
	for i := range res {
		if res[i] == nil {
			failed = true
			continue
		}
		a, err := parseAdmit(res[i], 1)
		if err != nil {
			failed, res[i] = true, nil
			if runErr == nil {
				runErr = err
			}
			continue
		}
		as[i] = a
		if len(a.need) > 0 {
			need = append(need, i)
		} else if !a.allowed && denied < 0 {
			denied = i
		}
	}
	// Undo the takes of the subjects that admitted when the whole
	// admission does not (a refusal, a seed needed or an error).
	if failed || len(need) > 0 || denied >= 0 {
		var undo []call
		var who []int
		for i := range as {
			if res[i] == nil || !as[i].allowed {
				continue
			}
			t := as[i].took[0]
			a := []any{"refund", r.nowArg(), id, t.req, t.tok, t.par, t.micros, t.tokens, t.rpmNew, t.tpmNew, 1}
			undo = append(undo, call{calls[i].keys, paramArgs(a, &ps[i])})
			who = append(who, i)
		}
		if len(undo) > 0 {
			// The undo runs even when the caller gave up: a take left in
			// place would hold its slot and budget until its TTL.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
			ures, err := r.run(uctx, undo)
			cancel()
			if err != nil && runErr == nil {
				runErr = err
			}
			for k, i := range who {
				if ures == nil || ures[k] == nil {
					continue
				}
				rd := &reader{v: ures[k]}
				rd.int()
				raw := rd.raw()
				if rd.done() == nil {
					as[i].raws[0] = raw
				}
			}
		}
	}
	if runErr != nil {
		return Decision{Denied: -1}, runErr
	}
	d := Decision{Allowed: true, Denied: -1, Now: time.UnixMicro(as[0].now).UTC(), States: make([]State, n)}
	switch {
	case len(need) > 0:
		d.Allowed = false
		d.needSeed(ps, need)
	case denied >= 0:
		d.Allowed, d.Denied = false, denied
		d.Limit, d.RetryAfter = limitOfCode[as[denied].code], micros(as[denied].retry)
	}
	for i := range as {
		d.States[i] = as[i].raws[0].state(&ps[i], d.Now)
	}
	if dup(calls) {
		// A subject listed twice: each script saw part of the admission;
		// the states after the decision are read again (rare: one more
		// round trip).
		states, err := r.Peek(ctx, req.Subjects)
		if err != nil {
			return Decision{Denied: -1}, err
		}
		d.States = states
	}
	return d, nil
}

// dup reports whether two calls touch the same subject.
func dup(calls []call) bool {
	seen := make(map[string]bool, len(calls))
	for _, c := range calls {
		if seen[c.keys[0]] {
			return true
		}
		seen[c.keys[0]] = true
	}
	return false
}

// Settle implements Store.
func (r *Redis) Settle(ctx context.Context, s *Settlement) error {
	n := len(s.Subjects)
	if n == 0 {
		return nil
	}
	id := reservationID(s.ID)
	rt := bound(s.Reserved.Tokens, maxAmount)
	act := chargeOf(&s.Actual)
	head := func(n int) []any { return []any{"settle", r.nowArg(), id, rt, act.tok, act.cost, n} }
	var calls []call
	if !r.split {
		c := call{args: head(n)}
		for i := range s.Subjects {
			p := paramsOf(&s.Subjects[i])
			c.keys = append(c.keys, r.keys(&s.Subjects[i])...)
			c.args = paramArgs(c.args, &p)
		}
		calls = []call{c}
	} else {
		for i := range s.Subjects {
			p := paramsOf(&s.Subjects[i])
			calls = append(calls, call{r.keys(&s.Subjects[i]), paramArgs(head(1), &p)})
		}
	}
	_, err := r.run(ctx, calls)
	return err
}

// Seed implements Store.
func (r *Redis) Seed(ctx context.Context, seeds []Seed) error {
	var calls []call
	one := call{args: []any{"seed", r.nowArg(), 0}}
	for i := range seeds {
		sd := &seeds[i]
		p := paramsOf(&sd.Subject)
		if p.code == periodNone {
			continue
		}
		a := []any{p.code, sd.Start.UnixMicro(), bound(sd.SpentMicros, maxAmount), bound(sd.SpentTokens, maxAmount)}
		if r.split {
			calls = append(calls, call{r.keys(&sd.Subject), append([]any{"seed", r.nowArg(), 1}, a...)})
			continue
		}
		one.keys = append(one.keys, r.keys(&sd.Subject)...)
		one.args = append(one.args, a...)
		one.args[2] = one.args[2].(int) + 1
	}
	if !r.split && len(one.keys) > 0 {
		calls = []call{one}
	}
	if len(calls) == 0 {
		return nil
	}
	_, err := r.run(ctx, calls)
	return err
}

// Peek implements Store: it reads, and writes nothing.
func (r *Redis) Peek(ctx context.Context, subjects []Subject) ([]State, error) {
	n := len(subjects)
	if n == 0 {
		return []State{}, nil
	}
	ps := make([]params, n)
	var calls []call
	for i := range subjects {
		ps[i] = paramsOf(&subjects[i])
		if r.split || i == 0 {
			k := n
			if r.split {
				k = 1
			}
			calls = append(calls, call{args: []any{"peek", r.nowArg(), k}})
		}
		c := &calls[len(calls)-1]
		c.keys = append(c.keys, r.keys(&subjects[i])...)
		c.args = paramArgs(c.args, &ps[i])
	}
	res, err := r.run(ctx, calls)
	if err != nil {
		return nil, err
	}
	out := make([]State, 0, n)
	for _, v := range res {
		rd := &reader{v: v}
		now := time.UnixMicro(rd.int()).UTC()
		for rd.i < len(v) && rd.err == nil && len(out) < n {
			raw := rd.raw()
			out = append(out, raw.state(&ps[len(out)], now))
		}
		if err := rd.done(); err != nil {
			return nil, err
		}
	}
	if len(out) != n {
		return nil, unavailable(errGarbage)
	}
	return out, nil
}

// Heartbeat records this replica as live for ttl and returns how many
// replicas are live (one script: ZADD, prune the expired, ZCARD). The
// limiter divides its fail-open local limits by it.
func (r *Redis) Heartbeat(ctx context.Context, replicaID string, ttl time.Duration) (int, error) {
	res, err := r.script.Run(ctx, r.c, []string{r.prefix + "replicas"}, "heartbeat", r.nowArg(), replicaID, max(ttl, time.Millisecond).Microseconds()).Result()
	if err != nil {
		return 0, unavailable(err)
	}
	n, ok := res.(int64)
	if !ok || n < 0 {
		return 0, unavailable(errGarbage)
	}
	return int(n), nil
}
