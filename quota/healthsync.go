package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// HealthEvent is one deployment's health transition as the replicas share
// it (the balancer's Transition, which quota does not import).
type HealthEvent struct {
	Deployment string
	// State is "healthy", "cooling", "ejected" or "credential_dead".
	State string
	// Until is when a cooling or ejected deployment is back (wall clock).
	Until time.Time
	// Revision is the provider configuration revision (credential_dead,
	// healthy).
	Revision int64
	// Origin is the replica that made the transition.
	Origin string
}

// HealthSyncOptions configure a HealthSync.
type HealthSyncOptions struct {
	// Prefix starts every key and the channel; default "sluice:h:". No
	// braces.
	Prefix string
	// Origin is this replica's id: events it publishes carry it, and
	// events that do are not applied back.
	Origin string
	// Apply receives the other replicas' transitions (from pub/sub and
	// from the poll, which repeats them) and reports whether one changed
	// anything. It is called from one goroutine at a time.
	Apply func(HealthEvent) bool
	// IDs lists the deployments to poll (the current configuration's).
	IDs func() []string
	// PollEvery is the safety-net poll of every deployment's key, for
	// messages lost while the subscription was down and for replicas
	// started after a transition. Default 1s.
	PollEvery time.Duration
	// MaxFor caps how far ahead an event's Until may be; default 1h.
	// (The balancer caps again by its own limits.)
	MaxFor time.Duration
	// Logger may be nil.
	Logger *slog.Logger
	// Now is the wall clock. Default time.Now.
	Now func() time.Time
}

// HealthSync shares balancer health transitions between the replicas
// through Redis: each published transition is SET on the deployment's
// key (expiring when the transition does) and PUBLISHed on one channel;
// every replica subscribes, and also polls the keys of the current
// deployments, which catches messages missed while disconnected and
// brings a replica started later up to date. Durations travel as time
// left (the message's "ms", the key's PTTL), so the replicas' clocks need
// not agree.
type HealthSync struct {
	c       redis.UniversalClient
	o       HealthSyncOptions
	channel string
	out     chan HealthEvent
	// published counts events Redis took, dropped those not published
	// because the queue was full, failed those Redis did not take, and
	// applied the other replicas' events that changed something here.
	published, dropped, failed, applied atomic.Int64
	applyMu                             sync.Mutex
}

// healthQueue bounds the transitions waiting to be published.
const healthQueue = 1024

// Bounds on what is read from Redis: a bigger or odder payload is
// ignored, whoever wrote it.
const (
	maxHealthPayload = 1024
	maxDeploymentID  = 256
	// healthyTTL keeps a healthy key (a tombstone) long enough to
	// override, for a poller, the state it replaced (at most a maximal
	// ejection).
	healthyTTL = 10 * time.Minute
	// deadTTL bounds a credential_dead key: it only matters under its
	// revision.
	deadTTL = 24 * time.Hour
	// healthOpTimeout bounds each Redis call.
	healthOpTimeout = 2 * time.Second
	// healthLogEvery spaces the warnings of failed publishes.
	healthLogEvery = 10 * time.Second
	// pollBatch is how many keys one pipelined poll round trip reads.
	pollBatch = 500
)

// NewHealthSync returns a HealthSync on c; Run makes it work.
func NewHealthSync(c redis.UniversalClient, o HealthSyncOptions) *HealthSync {
	if o.Prefix == "" {
		o.Prefix = "sluice:h:"
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
	if o.MaxFor <= 0 {
		o.MaxFor = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Apply == nil {
		o.Apply = func(HealthEvent) bool { return false }
	}
	if o.IDs == nil {
		o.IDs = func() []string { return nil }
	}
	return &HealthSync{c: c, o: o, channel: o.Prefix + "events", out: make(chan HealthEvent, healthQueue)}
}

// healthKey is deployment id's key: the id hashed into the hash tag, so
// each key has its own Cluster slot and odd bytes in an id cannot shape
// the key.
func (s *HealthSync) healthKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return s.o.Prefix + "{d:" + hex.EncodeToString(h[:10]) + "}"
}

// healthWire is the payload of a message and a key.
type healthWire struct {
	D  string `json:"d"`
	S  string `json:"s"`
	MS int64  `json:"ms,omitempty"` // time left at publishing, cooling/ejected
	R  int64  `json:"r,omitempty"`
	O  string `json:"o"`
}

// Publish queues ev for publishing, stamped with this replica's origin.
// It never blocks: when the queue is full the event is dropped (the
// other replicas then learn the deployment's state from their own
// attempts).
func (s *HealthSync) Publish(ev HealthEvent) {
	ev.Origin = s.o.Origin
	select {
	case s.out <- ev:
	default:
		s.dropped.Add(1)
	}
}

// Run publishes, subscribes and polls until ctx ends, and returns when
// every goroutine it started has stopped.
func (s *HealthSync) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.publishLoop(ctx) })
	wg.Go(func() { s.subscribeLoop(ctx) })
	wg.Go(func() { s.pollLoop(ctx) })
	wg.Wait()
}

func (s *HealthSync) publishLoop(ctx context.Context) {
	var lastWarn time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.out:
			err := s.publish(ctx, ev)
			if err == nil {
				s.published.Add(1)
			}
			if err != nil && ctx.Err() == nil {
				s.failed.Add(1)
				// One line per healthLogEvery, not one per transition,
				// while Redis is away.
				if now := s.o.Now(); now.Sub(lastWarn) >= healthLogEvery {
					lastWarn = now
					s.o.Logger.Warn("sharing deployment health transitions failed", "deployment", ev.Deployment, "state", ev.State, "failed_so_far", s.failed.Load(), "err", err)
				}
			}
		}
	}
}

// publish SETs and PUBLISHes one event in one round trip.
func (s *HealthSync) publish(ctx context.Context, ev HealthEvent) error {
	w := healthWire{D: ev.Deployment, S: ev.State, R: ev.Revision, O: ev.Origin}
	ttl := healthyTTL
	switch ev.State {
	case "cooling", "ejected":
		left := ev.Until.Sub(s.o.Now())
		if left < time.Millisecond {
			return nil // already over
		}
		left = min(left, s.o.MaxFor)
		w.MS, ttl = left.Milliseconds(), left
	case "credential_dead":
		ttl = deadTTL
	case "healthy":
	default:
		return nil
	}
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, healthOpTimeout)
	defer cancel()
	// Two commands, not a transaction: on a Cluster the key and the
	// channel need not share a slot. The key is written first, so a
	// poller never sees the message's state missing from the key.
	_, err = s.c.Pipelined(cctx, func(p redis.Pipeliner) error {
		p.Set(cctx, s.healthKey(ev.Deployment), b, ttl)
		p.Publish(cctx, s.channel, b)
		return nil
	})
	return err
}

// subscribeLoop receives the other replicas' events. go-redis reconnects
// and resubscribes by itself; what is published meanwhile the poll
// catches.
func (s *HealthSync) subscribeLoop(ctx context.Context) {
	ps := s.c.Subscribe(ctx, s.channel)
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelSize(256))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			s.receive("", []byte(m.Payload), -1)
		}
	}
}

// receive decodes and applies one payload. want, when set, is the
// deployment the payload must be for (the key it was read from); pttl,
// when not negative, is the key's time left, which replaces the
// payload's.
func (s *HealthSync) receive(want string, payload []byte, pttl time.Duration) {
	ev, ok := s.decode(want, payload, pttl)
	if !ok {
		return
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.o.Apply(ev) {
		s.applied.Add(1)
	}
}

// decode checks a payload; false for garbage, echoes and events that are
// over.
func (s *HealthSync) decode(want string, payload []byte, pttl time.Duration) (HealthEvent, bool) {
	if len(payload) == 0 || len(payload) > maxHealthPayload {
		return HealthEvent{}, false
	}
	var w healthWire
	if json.Unmarshal(payload, &w) != nil {
		return HealthEvent{}, false
	}
	if w.D == "" || len(w.D) > maxDeploymentID || (want != "" && w.D != want) || w.O == s.o.Origin {
		return HealthEvent{}, false
	}
	ev := HealthEvent{Deployment: w.D, State: w.S, Revision: w.R, Origin: w.O}
	switch w.S {
	case "cooling", "ejected":
		left := time.Duration(w.MS) * time.Millisecond
		if w.MS <= 0 || w.MS > int64(s.o.MaxFor/time.Millisecond) {
			left = 0
		}
		if pttl >= 0 {
			left = min(pttl, s.o.MaxFor)
		}
		if left <= 0 {
			return HealthEvent{}, false
		}
		ev.Until = s.o.Now().Add(left)
	case "healthy":
		if want != "" {
			// A healthy key is a tombstone: it keeps a poller from
			// applying the state it replaced. Applied from a poll it could
			// erase a newer transition whose message came before it.
			return HealthEvent{}, false
		}
	case "credential_dead":
	default:
		return HealthEvent{}, false
	}
	return ev, true
}

// pollLoop reads every current deployment's key every PollEvery.
func (s *HealthSync) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.o.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Poll(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Debug("polling shared deployment health failed", "err", err)
		}
	}
}

// Poll reads the keys of the deployments IDs lists, with their time left,
// and applies what they hold: pipelined GET and PTTL, which a Cluster
// client splits per node.
func (s *HealthSync) Poll(ctx context.Context) error {
	ids := s.o.IDs()
	for len(ids) > 0 {
		n := min(len(ids), pollBatch)
		if err := s.pollBatch(ctx, ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

func (s *HealthSync) pollBatch(ctx context.Context, ids []string) error {
	cctx, cancel := context.WithTimeout(ctx, healthOpTimeout)
	defer cancel()
	gets := make([]*redis.StringCmd, len(ids))
	ttls := make([]*redis.DurationCmd, len(ids))
	_, err := s.c.Pipelined(cctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			k := s.healthKey(id)
			gets[i] = p.Get(cctx, k)
			ttls[i] = p.PTTL(cctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i, id := range ids {
		v, err := gets[i].Bytes()
		if err != nil {
			continue
		}
		pttl, err := ttls[i].Result()
		if err != nil || pttl < 0 {
			// No expiry (-1) is not what publish writes; gone (-2) is over.
			continue
		}
		s.receive(id, v, pttl)
	}
	return nil
}

// Dropped is how many events were not published because the queue was
// full.
func (s *HealthSync) Dropped() int64 { return s.dropped.Load() }

// HealthSyncCounts are a HealthSync's totals since it was made.
type HealthSyncCounts struct {
	// Published events Redis took; Dropped when the queue was full;
	// Failed when Redis did not take them; Applied events of other
	// replicas that changed something here (Apply said so).
	Published, Dropped, Failed, Applied int64
}

// Counts returns the totals, for metrics.
func (s *HealthSync) Counts() HealthSyncCounts {
	return HealthSyncCounts{Published: s.published.Load(), Dropped: s.dropped.Load(), Failed: s.failed.Load(), Applied: s.applied.Load()}
}
