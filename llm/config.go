package llm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// ProviderType names a provider wire family.
type ProviderType string

// Provider types known to this build.
const (
	// ProviderOpenAI speaks OpenAI's API at base_url (default https://api.openai.com/v1).
	ProviderOpenAI ProviderType = "openai"
	// ProviderOpenAICompatible is any server that speaks OpenAI's wire format
	// (DeepSeek, Groq, Mistral, vLLM, Ollama…) at base_url, with extra headers.
	ProviderOpenAICompatible ProviderType = "openai-compatible"
	// ProviderBedrock speaks Amazon Bedrock's Converse API in options.region
	// (base_url overrides the regional endpoint), signed with SigV4 or
	// authorised by a Bedrock API key.
	ProviderBedrock ProviderType = "bedrock"
	// ProviderGemini speaks Google's Gemini API (AI Studio) at base_url
	// (default https://generativelanguage.googleapis.com), with an API key.
	ProviderGemini ProviderType = "gemini"
	// ProviderVertex speaks Gemini on Google Cloud's Vertex AI, with a
	// service account's OAuth2 tokens.
	ProviderVertex ProviderType = "vertex"
	// ProviderAzure is Azure OpenAI: OpenAI's wire format at a resource
	// endpoint (https://{resource}.openai.azure.com, required), with the
	// deployment in the path and an api-version query (or the /openai/v1/
	// surface), authenticated with an api-key header or an Entra ID token.
	ProviderAzure ProviderType = "azure"
	// ProviderAnthropic speaks Anthropic's Messages API at base_url
	// (default https://api.anthropic.com).
	ProviderAnthropic ProviderType = "anthropic"
)

// Timeouts bounds the phases of one upstream call. Zero means the default.
type Timeouts struct {
	// Connect bounds the TCP (and TLS) dial. Default 10s.
	Connect time.Duration
	// FirstByte bounds the wait for the upstream response headers. A
	// non-streamed answer sends its headers only when the whole generation
	// is done, so this is also the longest a non-streamed call may take.
	// Default 10m, as OpenAI's SDKs.
	FirstByte time.Duration
	// Idle bounds the gap between two chunks of a body, including the wait
	// for the first event of a stream (reasoning models think before they
	// speak). Default 5m.
	Idle time.Duration
}

// Default timeouts.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultFirstByteTimeout = 10 * time.Minute
	DefaultIdleTimeout      = 5 * time.Minute
)

// WithDefaults returns t with zero fields set to their defaults.
func (t Timeouts) WithDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultConnectTimeout
	}
	if t.FirstByte <= 0 {
		t.FirstByte = DefaultFirstByteTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	return t
}

// Provider is one configured upstream account: where it lives and how to
// authenticate. APIKey, Secrets and the values of credential-like Headers
// (see SensitiveHeader) are secrets: they live only in memory and must never
// be logged, rendered or put in a metric.
type Provider struct {
	ID       string
	Name     string
	Type     ProviderType
	BaseURL  string
	APIKey   string
	Headers  map[string]string
	Timeouts Timeouts
	// Options are the family's own settings (Azure's api-version,
	// Bedrock's region, Anthropic's version and beta headers…) as the
	// admin API accepted them, validated by the family.
	Options json.RawMessage
	// Secrets are the family's credentials beyond APIKey (Bedrock's
	// access key pair, say), decrypted; like APIKey they never leave memory.
	Secrets map[string]string
	// Probe is the provider's active health check; the zero value is off.
	Probe Probe
	// Revision is the configuration version that last changed the row.
	Revision int64
	// UpdatedAt changes whenever any field changes.
	UpdatedAt time.Time
}

// SensitiveHeader reports whether a static provider header probably
// carries a credential: its value is masked in admin views and redacted from
// everything an upstream sends back.
func SensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	if n == "authorization" || n == "proxy-authorization" || n == "cookie" {
		return true
	}
	for _, w := range []string{"key", "token", "secret", "auth", "password", "signature", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Deployment is one way to serve a model: a provider and the model name that
// provider knows it by, with a routing weight and prices.
type Deployment struct {
	// ID is the deployment's stable id ("dep_…"), assigned by the store when
	// the deployment is created and kept across updates and provider
	// renames. It keys health state, usage rows, headers and metrics.
	ID string `json:"id"`
	// Provider is the provider's name.
	Provider string `json:"provider"`
	// Model is the upstream model name sent to the provider.
	Model string `json:"model"`
	// Weight is the relative share of traffic; 0 counts as 1.
	Weight int `json:"weight"`
	// Prices are USD per million tokens of each kind.
	Prices
	// Limits are the provider account's limits for this deployment
	// (rpm and tpm, typically), enforced per attempt.
	Limits
	// Priority is the deployment's tier for the priority strategy: lower
	// is preferred, 0 (the default) first. Other strategies ignore it.
	Priority int `json:"priority,omitempty"`
}

// Strategy names how a model's balancer orders its healthy deployments.
type Strategy string

// Strategies. Health is the same under all of them: they only order the
// deployments that are available.
const (
	// StrategyAuto (also the empty string) takes the cheapest deployment
	// for the request unless its latency is more than LatencyTolerance
	// worse than the fastest's; see StrategyOptions.
	StrategyAuto Strategy = "auto"
	// StrategyWeighted is smooth weighted round-robin on the weights.
	StrategyWeighted Strategy = "weighted"
	// StrategyLeastBusy picks the less busy of two random deployments
	// (power of two choices on in-flight attempts).
	StrategyLeastBusy Strategy = "least_busy"
	// StrategyLatency picks the lowest moving average of time to first
	// token (total time for non-streamed answers).
	StrategyLatency Strategy = "latency"
	// StrategyCost picks the cheapest for the request's estimated prompt
	// and maximum output tokens.
	StrategyCost Strategy = "cost"
	// StrategyPriority picks the lowest Priority tier that has an available
	// deployment, weighted round-robin within the tier.
	StrategyPriority Strategy = "priority"
)

// Valid reports whether s names a strategy ("" is auto).
func (s Strategy) Valid() bool {
	switch s {
	case "", StrategyAuto, StrategyWeighted, StrategyLeastBusy, StrategyLatency, StrategyCost, StrategyPriority:
		return true
	}
	return false
}

// StrategyOptions tune the auto strategy; an absent field takes its
// default. Other strategies ignore them.
type StrategyOptions struct {
	// LatencyTolerance is how much slower than the fastest available
	// deployment the cheapest may be and still be picked: 0.5 (the
	// default) takes the cheapest unless its time to first token is more
	// than 50% above the fastest's. 0 always takes the fastest (the
	// cheapest among equally fast ones).
	LatencyTolerance *float64 `json:"latency_tolerance,omitempty"`
	// ErrorWeight is how much a deployment's recent error rate counts
	// against it: its latency and cost are both multiplied by
	// 1 + ErrorWeight × error rate. Default 1 (a deployment failing half
	// its attempts looks 50% slower and dearer).
	ErrorWeight *float64 `json:"error_weight,omitempty"`
}

// Defaults of StrategyOptions.
const (
	DefaultLatencyTolerance = 0.5
	DefaultErrorWeight      = 1.0
)

// Tolerance is LatencyTolerance or its default.
func (o *StrategyOptions) Tolerance() float64 {
	if o == nil || o.LatencyTolerance == nil {
		return DefaultLatencyTolerance
	}
	return *o.LatencyTolerance
}

// ErrWeight is ErrorWeight or its default.
func (o *StrategyOptions) ErrWeight() float64 {
	if o == nil || o.ErrorWeight == nil {
		return DefaultErrorWeight
	}
	return *o.ErrorWeight
}

// Model is a public model name and the deployments that can serve it.
type Model struct {
	ID          string
	Name        string
	Deployments []Deployment
	// Limits apply to all callers of the model together.
	Limits Limits
	// Strategy orders the available deployments; "" is auto.
	Strategy Strategy
	// StrategyOptions tune the auto strategy; nil takes the defaults.
	StrategyOptions *StrategyOptions
	// Routing holds fallbacks, retry bounds, hedging and prompt-cache
	// affinity; the zero value takes the defaults.
	Routing   Routing
	CreatedAt time.Time
	// Revision is the configuration version that last changed the row.
	Revision int64
}

// Owner is a team or user that keys (and later JWT subjects) account
// their usage to, with limits shared by all of them.
type Owner struct {
	Name   string
	Limits Limits
	// Revision is the configuration version that last changed the row.
	Revision int64
}

// Key is a Sluice API key as the hot path sees it. The secret itself is
// never kept: Hash is the hex SHA-256 of the full key.
type Key struct {
	ID        string
	Name      string
	Prefix    string
	Hash      string
	Models    []string
	ExpiresAt *time.Time
	Disabled  bool
	Metadata  map[string]string
	// Owner is the team or user the key's usage is accounted to ("" when
	// none); it is recorded on every usage row.
	Owner string
	// Limits are the key's own quotas.
	Limits Limits
	// Revision is the configuration version that last changed the row.
	Revision int64
}

// Allows reports whether the key may use model. An empty allow-list allows all.
func (k *Key) Allows(model string) bool {
	if len(k.Models) == 0 {
		return true
	}
	for _, m := range k.Models {
		if m == model {
			return true
		}
	}
	return false
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}

// AppendKeyHash appends the lowercase hex SHA-256 of a Sluice key secret to
// dst: the form keys are stored in and the key of Snapshot.Keys. With a
// stack buffer as dst, a lookup costs no allocation.
func AppendKeyHash(dst []byte, secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return hex.AppendEncode(dst, sum[:])
}

// HashKey returns AppendKeyHash as a string.
func HashKey(secret string) string { return string(AppendKeyHash(nil, secret)) }

// Snapshot is an immutable view of the whole configuration. The hot path
// reads it through an atomic pointer and never mutates it.
type Snapshot struct {
	// Version increases with every configuration change.
	Version   int64
	Providers map[string]*Provider // by name
	Models    map[string]*Model    // by public name
	Keys      map[string]*Key      // by hex SHA-256 of the secret
	Owners    map[string]*Owner    // by name; only owners with limits
	Issuers   map[string]*Issuer   // by name
	// AdminKeys are the admin API keys stored in the database (not the
	// bootstrap key), by hex SHA-256 of the secret; revoked keys are left out.
	AdminKeys map[string]*AdminKey
}

// EmptySnapshot returns a snapshot with no configuration.
func EmptySnapshot() *Snapshot {
	return &Snapshot{
		Providers: map[string]*Provider{},
		Models:    map[string]*Model{},
		Keys:      map[string]*Key{},
		Owners:    map[string]*Owner{},
		Issuers:   map[string]*Issuer{},
		AdminKeys: map[string]*AdminKey{},
	}
}
