package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// ModelInput creates or replaces a model.
type ModelInput struct {
	Name        string           `json:"name"`
	Deployments []llm.Deployment `json:"deployments"`
	// Limits apply to all callers of the model together, at the top level
	// of the object (rpm, tpm, max_parallel, fail_mode, budget).
	llm.Limits
	// Strategy orders the available deployments ("" is auto).
	Strategy llm.Strategy `json:"strategy"`
	// StrategyOptions tune the auto strategy; absent takes the defaults.
	StrategyOptions *llm.StrategyOptions `json:"strategy_options"`
	// Routing (fallbacks, context_window_fallbacks, retry, hedge,
	// cache_affinity) is at the top level of the object.
	llm.Routing
}

// AsPatch turns a full replacement (PUT) into a patch that sets every field.
func (in ModelInput) AsPatch() ModelPatch {
	d := in.Deployments
	return ModelPatch{Name: &in.Name, Deployments: &d, LimitsPatch: limitsPatch(in.Limits),
		Strategy: &in.Strategy, StrategyOptions: Optional[*llm.StrategyOptions]{Set: true, Value: in.StrategyOptions},
		Fallbacks: Optional[[]string]{Set: true, Value: in.Fallbacks}, ContextWindowFallbacks: Optional[[]string]{Set: true, Value: in.ContextWindowFallbacks},
		Retry: Optional[*llm.RetryPolicy]{Set: true, Value: in.Retry}, Hedge: Optional[*llm.HedgePolicy]{Set: true, Value: in.Hedge},
		CacheAffinity: Optional[*llm.AffinityPolicy]{Set: true, Value: in.CacheAffinity}}
}

// ModelPatch changes the fields that are non-nil (set). Deployments, when
// given, replaces the whole list; strategy_options, when given, replaces
// the whole object (null: the defaults). The limits: see LimitsPatch.
type ModelPatch struct {
	Name            *string                        `json:"name"`
	Deployments     *[]llm.Deployment              `json:"deployments"`
	Strategy        *llm.Strategy                  `json:"strategy"`
	StrategyOptions Optional[*llm.StrategyOptions] `json:"strategy_options"`
	// The routing members, each replaced whole when given (null: default).
	Fallbacks              Optional[[]string]            `json:"fallbacks"`
	ContextWindowFallbacks Optional[[]string]            `json:"context_window_fallbacks"`
	Retry                  Optional[*llm.RetryPolicy]    `json:"retry"`
	Hedge                  Optional[*llm.HedgePolicy]    `json:"hedge"`
	CacheAffinity          Optional[*llm.AffinityPolicy] `json:"cache_affinity"`
	LimitsPatch
}

// Model is the admin view of a model.
type Model struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Deployments []llm.Deployment `json:"deployments"`
	// Limits are shown at the top level; a limit that is not set is absent.
	llm.Limits
	// Strategy is the balancing strategy, "auto" when none was set.
	Strategy llm.Strategy `json:"strategy"`
	// StrategyOptions are shown when set.
	StrategyOptions *llm.StrategyOptions `json:"strategy_options,omitempty"`
	// Routing is shown at the top level; members not set are absent.
	llm.Routing
	// Revision is the configuration version that last changed the model.
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

const modelCols = `id, name, deployments, created_at, updated_at, revision, limits, strategy, strategy_options, routing`

func scanModel(sc rowScanner) (*Model, error) {
	var m Model
	var deps, limits, strategy, opts, routing string
	var created, updated dbTime
	if err := sc.Scan(&m.ID, &m.Name, &deps, &created, &updated, &m.Revision, &limits, &strategy, &opts, &routing); err != nil {
		return nil, err
	}
	var err error
	if m.Limits, err = parseLimits("model", m.ID, limits); err != nil {
		return nil, err
	}
	m.Strategy = normStrategy(llm.Strategy(strategy))
	if opts != "" && opts != "{}" {
		m.StrategyOptions = new(llm.StrategyOptions)
		if err := json.Unmarshal([]byte(opts), m.StrategyOptions); err != nil {
			return nil, fmt.Errorf("store: model %s: bad strategy_options: %w", m.ID, err)
		}
	}
	if routing != "" && routing != "{}" {
		if err := json.Unmarshal([]byte(routing), &m.Routing); err != nil {
			return nil, fmt.Errorf("store: model %s: bad routing: %w", m.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(deps), &m.Deployments); err != nil {
		return nil, fmt.Errorf("store: model %s: bad deployments: %w", m.ID, err)
	}
	if m.Deployments == nil {
		m.Deployments = []llm.Deployment{}
	}
	for i := range m.Deployments {
		if m.Deployments[i].ID == "" {
			// A row written before deployments had ids: derive one that is
			// stable until the next write persists it.
			m.Deployments[i].ID = legacyDeploymentID(m.ID, i, &m.Deployments[i])
		}
	}
	m.CreatedAt, m.UpdatedAt = created.T, updated.T
	return &m, nil
}

func loadModelRows(ctx context.Context, q queryer) ([]*Model, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+modelCols+` FROM models ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: load models: %w", err)
	}
	defer rows.Close()
	var out []*Model
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, fmt.Errorf("store: load models: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load models: %w", err)
	}
	return out, nil
}

func getModel(ctx context.Context, q queryer, idOrName string) (*Model, error) {
	m, err := scanModel(q.QueryRowContext(ctx, `SELECT `+modelCols+` FROM models
		WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1`, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("model %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get model: %w", err)
	}
	return m, nil
}

// normStrategy spells the default strategy out.
func normStrategy(s llm.Strategy) llm.Strategy {
	if s == "" {
		return llm.StrategyAuto
	}
	return s
}

// strategyOptionsText is the strategy_options column of o.
func strategyOptionsText(o *llm.StrategyOptions) string {
	if o == nil {
		return "{}"
	}
	b, err := json.Marshal(o)
	if err != nil {
		return "{}" // unreachable: two float pointers
	}
	return string(b)
}

// maxStrategyOption bounds latency_tolerance and error_weight.
const maxStrategyOption = 100

// validStrategy checks a model's strategy and options.
func validStrategy(s llm.Strategy, o *llm.StrategyOptions) error {
	if !s.Valid() {
		return invalid("strategy", "must be one of auto, weighted, least_busy, latency, cost, priority")
	}
	if o == nil {
		return nil
	}
	for _, c := range []struct {
		name string
		v    *float64
	}{
		{"strategy_options.latency_tolerance", o.LatencyTolerance},
		{"strategy_options.error_weight", o.ErrorWeight},
	} {
		if c.v != nil && (math.IsNaN(*c.v) || *c.v < 0 || *c.v > maxStrategyOption) {
			return invalid(c.name, "must be a number from 0 to %d", maxStrategyOption)
		}
	}
	return nil
}

// cloneStrategyOptions copies o, so the stored value never aliases the
// caller's.
func cloneStrategyOptions(o *llm.StrategyOptions) *llm.StrategyOptions {
	if o == nil {
		return nil
	}
	c := &llm.StrategyOptions{}
	if o.LatencyTolerance != nil {
		v := *o.LatencyTolerance
		c.LatencyTolerance = &v
	}
	if o.ErrorWeight != nil {
		v := *o.ErrorWeight
		c.ErrorWeight = &v
	}
	if c.LatencyTolerance == nil && c.ErrorWeight == nil {
		return nil
	}
	return c
}

// maxPriority bounds a deployment's priority tier.
const maxPriority = 1_000_000

// normDeployments copies ds with each deployment's limits normalised.
func normDeployments(ds []llm.Deployment) []llm.Deployment {
	out := append([]llm.Deployment(nil), ds...)
	for i := range out {
		out[i].Limits = normLimits(out[i].Limits)
	}
	return out
}

// legacyDeploymentID derives a deployment id for a row stored without one.
func legacyDeploymentID(modelID string, i int, d *llm.Deployment) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%s\x00%s", modelID, i, d.Provider, d.Model))
	return "dep_" + hex.EncodeToString(h[:12])
}

// assignDeploymentIDs gives every deployment in next its stable id. An id
// the caller sent must be one of prev's (ids are the server's to assign: a
// client must not make two models share health state); a deployment sent
// without one inherits the id of prev's deployment with the same provider
// and upstream model, else gets a new one.
func assignDeploymentIDs(prev, next []llm.Deployment) error {
	known := make(map[string]bool, len(prev))
	byTarget := make(map[[2]string]string, len(prev))
	for _, d := range prev {
		known[d.ID] = true
		k := [2]string{d.Provider, d.Model}
		if _, ok := byTarget[k]; !ok {
			byTarget[k] = d.ID
		}
	}
	used := make(map[string]bool, len(next))
	for i := range next {
		d := &next[i]
		if d.ID != "" {
			if !known[d.ID] {
				return invalid(fmt.Sprintf("deployments[%d].id", i), "is not a deployment of this model: ids are assigned by the server; omit id for a new deployment")
			}
			if used[d.ID] {
				return invalid(fmt.Sprintf("deployments[%d].id", i), "appears twice")
			}
			used[d.ID] = true
		}
	}
	for i := range next {
		d := &next[i]
		if d.ID != "" {
			continue
		}
		if id, ok := byTarget[[2]string{d.Provider, d.Model}]; ok && !used[id] {
			d.ID = id
		} else {
			d.ID = newID("dep_")
		}
		used[d.ID] = true
	}
	return nil
}

// validateModel checks the model's fields; provider existence is checked
// against the providers table inside tx.
func validateModel(ctx context.Context, tx *sql.Tx, in ModelInput) error {
	if err := validText("name", in.Name, maxNameLen, true); err != nil {
		return err
	}
	if err := validLimits("", &in.Limits); err != nil {
		return err
	}
	if err := validStrategy(in.Strategy, in.StrategyOptions); err != nil {
		return err
	}
	if err := validRouting(ctx, tx, in.Name, &in.Routing); err != nil {
		return err
	}
	if len(in.Deployments) == 0 {
		return invalid("deployments", "at least one deployment is required")
	}
	if len(in.Deployments) > maxDeployments {
		return invalid("deployments", "at most %d deployments", maxDeployments)
	}
	for i, d := range in.Deployments {
		f := fmt.Sprintf("deployments[%d]", i)
		if d.Provider == "" {
			return invalid(f+".provider", "is required")
		}
		if err := validText(f+".model", d.Model, 256, false); err != nil {
			return err
		}
		if d.Weight < 0 {
			return invalid(f+".weight", "must be >= 0")
		}
		if d.Priority < 0 || d.Priority > maxPriority {
			return invalid(f+".priority", "must be from 0 to %d", maxPriority)
		}
		if err := validPrices(f, d.Prices); err != nil {
			return err
		}
		if err := validLimits(f, &d.Limits); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM providers WHERE name = $1`, d.Provider).Scan(&n); err != nil {
			return fmt.Errorf("store: check provider: %w", err)
		}
		if n == 0 {
			return invalid(f+".provider", "provider %q does not exist", d.Provider)
		}
	}
	return nil
}

// CreateModel validates and stores a new model.
func (s *Store) CreateModel(ctx context.Context, in ModelInput) (Model, error) {
	if err := validText("name", in.Name, maxNameLen, true); err != nil {
		return Model{}, err
	}
	m := Model{ID: newID("mdl_"), Name: in.Name, Deployments: normDeployments(in.Deployments), Limits: normLimits(in.Limits),
		Strategy: normStrategy(in.Strategy), StrategyOptions: cloneStrategyOptions(in.StrategyOptions), Routing: cloneRouting(in.Routing), CreatedAt: now()}
	m.UpdatedAt = m.CreatedAt
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		m.Revision = rev
		if err := validateModel(ctx, tx, in); err != nil {
			return err
		}
		if err := assignDeploymentIDs(nil, m.Deployments); err != nil {
			return err
		}
		if taken, err := nameTaken(ctx, tx, "models", m.Name, m.ID); err != nil {
			return err
		} else if taken {
			return conflict("a model named %q already exists", m.Name)
		}
		deps, err := json.Marshal(m.Deployments)
		if err != nil {
			return fmt.Errorf("store: encode deployments: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO models (`+modelCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
			m.ID, m.Name, string(deps), s.tv(m.CreatedAt), s.tv(m.UpdatedAt), m.Revision, limitsText(m.Limits),
			string(m.Strategy), strategyOptionsText(m.StrategyOptions), routingText(m.Routing))
		if isUniqueViolation(err) {
			return conflict("a model named %q already exists", m.Name)
		}
		if err != nil {
			return fmt.Errorf("store: insert model: %w", err)
		}
		return nil
	})
	if err != nil {
		return Model{}, err
	}
	return m, nil
}

// GetModel returns the model with the given id or name.
func (s *Store) GetModel(ctx context.Context, idOrName string) (Model, error) {
	m, err := getModel(ctx, s.rdb, idOrName)
	if err != nil {
		return Model{}, err
	}
	return *m, nil
}

// ListModels returns one page of models ordered by creation, and the total count.
func (s *Store) ListModels(ctx context.Context, p Page) ([]Model, int, error) {
	return listPage(ctx, s, p, "models", modelCols, "created_at, id", "models", scanModel, func(m *Model) Model { return *m })
}

// UpdateModel applies patch to the model with the given id or name.
func (s *Store) UpdateModel(ctx context.Context, idOrName string, patch ModelPatch) (Model, error) {
	var out Model
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		m, err := getModel(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		in := ModelInput{Name: m.Name, Deployments: m.Deployments, Limits: patch.LimitsPatch.apply(m.Limits),
			Strategy: m.Strategy, StrategyOptions: m.StrategyOptions, Routing: m.Routing}
		patch.applyRouting(&in.Routing)
		if patch.Name != nil {
			in.Name = *patch.Name
		}
		if patch.Strategy != nil {
			in.Strategy = *patch.Strategy
		}
		if patch.StrategyOptions.Set {
			in.StrategyOptions = cloneStrategyOptions(patch.StrategyOptions.Value)
		}
		if patch.Deployments != nil {
			in.Deployments = normDeployments(*patch.Deployments)
		}
		if err := validateModel(ctx, tx, in); err != nil {
			return err
		}
		if err := assignDeploymentIDs(m.Deployments, in.Deployments); err != nil {
			return err
		}
		if in.Name != m.Name {
			if taken, err := nameTaken(ctx, tx, "models", in.Name, m.ID); err != nil {
				return err
			} else if taken {
				return conflict("a model named %q already exists", in.Name)
			}
		}
		m.Name, m.Deployments, m.Limits, m.UpdatedAt, m.Revision = in.Name, in.Deployments, in.Limits, now(), rev
		m.Strategy, m.StrategyOptions, m.Routing = normStrategy(in.Strategy), in.StrategyOptions, cloneRouting(in.Routing)
		deps, err := json.Marshal(m.Deployments)
		if err != nil {
			return fmt.Errorf("store: encode deployments: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE models SET name=$2, deployments=$3, updated_at=$4, revision=$5, limits=$6, strategy=$7, strategy_options=$8, routing=$9 WHERE id=$1`,
			m.ID, m.Name, string(deps), s.tv(m.UpdatedAt), m.Revision, limitsText(m.Limits),
			string(m.Strategy), strategyOptionsText(m.StrategyOptions), routingText(m.Routing))
		if isUniqueViolation(err) {
			return conflict("a model named %q already exists", m.Name)
		}
		if err != nil {
			return fmt.Errorf("store: update model: %w", err)
		}
		out = *m
		return nil
	})
	return out, err
}

// DeleteModel deletes the model with the given id or name.
func (s *Store) DeleteModel(ctx context.Context, idOrName string) error {
	return s.configTx(ctx, func(tx *sql.Tx, _ int64) error {
		m, err := getModel(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM models WHERE id = $1`, m.ID); err != nil {
			return fmt.Errorf("store: delete model: %w", err)
		}
		return nil
	})
}

// renameProviderInModels rewrites deployments that reference oldName; the
// models it changes get revision rev.
func (s *Store) renameProviderInModels(ctx context.Context, tx *sql.Tx, rev int64, oldName, newName string) error {
	models, err := loadModelRows(ctx, tx)
	if err != nil {
		return err
	}
	for _, m := range models {
		changed := false
		for i := range m.Deployments {
			if m.Deployments[i].Provider == oldName {
				m.Deployments[i].Provider = newName
				changed = true
			}
		}
		if !changed {
			continue
		}
		deps, err := json.Marshal(m.Deployments)
		if err != nil {
			return fmt.Errorf("store: encode deployments: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE models SET deployments=$2, updated_at=$3, revision=$4 WHERE id=$1`,
			m.ID, string(deps), s.tv(now()), rev); err != nil {
			return fmt.Errorf("store: rename provider in models: %w", err)
		}
	}
	return nil
}
