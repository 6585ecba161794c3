package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// OwnerInput creates or replaces an owner (PUT /admin/owners/{name}).
type OwnerInput struct {
	// Name is optional in a body; when given it must be the path's name
	// (owners are not renamed: usage rows record the name).
	Name string `json:"name"`
	// Limits are shared by every key of the owner together, at the top
	// level of the object (rpm, tpm, max_parallel, fail_mode, budget).
	llm.Limits
}

// AsPatch turns a full replacement (PUT) into a patch that sets every field.
func (in OwnerInput) AsPatch() OwnerPatch {
	p := OwnerPatch{LimitsPatch: limitsPatch(in.Limits)}
	if in.Name != "" {
		p.Name = &in.Name
	}
	return p
}

// OwnerPatch changes the limits that are set (see LimitsPatch). Name, when
// given, must be the owner's own.
type OwnerPatch struct {
	Name *string `json:"name"`
	LimitsPatch
}

// Owner is the admin view of an owner: a team or user that keys account
// their usage to, with the limits all of them share.
type Owner struct {
	Name string `json:"name"`
	// Limits are shown at the top level; a limit that is not set is absent.
	llm.Limits
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Revision is the configuration version that last changed the owner.
	Revision int64 `json:"revision"`
}

const ownerCols = `name, limits, created_at, updated_at, revision`

func scanOwner(sc rowScanner) (*Owner, error) {
	var o Owner
	var limits string
	var created, updated dbTime
	if err := sc.Scan(&o.Name, &limits, &created, &updated, &o.Revision); err != nil {
		return nil, err
	}
	var err error
	if o.Limits, err = parseLimits("owner", o.Name, limits); err != nil {
		return nil, err
	}
	o.CreatedAt, o.UpdatedAt = created.T, updated.T
	return &o, nil
}

func getOwner(ctx context.Context, q queryer, name string) (*Owner, error) {
	if len(name) > maxNameLen {
		// No such owner can exist; don't send the string to the database.
		return nil, fmt.Errorf("owner %w", ErrNotFound)
	}
	o, err := scanOwner(q.QueryRowContext(ctx, `SELECT `+ownerCols+` FROM owners WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("owner %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get owner: %w", err)
	}
	return o, nil
}

// validOwnerName checks an owner name as a key's owner is checked.
func validOwnerName(name string) error { return validText("name", name, maxNameLen, false) }

// checkOwnerPatchName refuses a body name that is not the path's.
func checkOwnerPatchName(name string, p *string) error {
	if p != nil && *p != name {
		return invalid("name", "must be the name in the path (owners cannot be renamed)")
	}
	return nil
}

// GetOwner returns the owner with the given name.
func (s *Store) GetOwner(ctx context.Context, name string) (Owner, error) {
	o, err := getOwner(ctx, s.rdb, name)
	if err != nil {
		return Owner{}, err
	}
	return *o, nil
}

// ListOwners returns one page of owners ordered by name, and the total count.
func (s *Store) ListOwners(ctx context.Context, p Page) ([]Owner, int, error) {
	return listPage(ctx, s, p, "owners", ownerCols, "name", "owners", scanOwner, func(o *Owner) Owner { return *o })
}

// PutOwner creates the owner name with in's limits, or replaces the limits
// of the existing one; created reports which.
func (s *Store) PutOwner(ctx context.Context, name string, in OwnerInput) (out Owner, created bool, err error) {
	if err := validOwnerName(name); err != nil {
		return Owner{}, false, err
	}
	if in.Name != "" && in.Name != name {
		return Owner{}, false, invalid("name", "must be the name in the path (owners cannot be renamed)")
	}
	l := normLimits(in.Limits)
	if err := validLimits("", &l); err != nil {
		return Owner{}, false, err
	}
	err = s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		t := now()
		o, err := getOwner(ctx, tx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			o, created = &Owner{Name: name, CreatedAt: t}, true
		case err != nil:
			return err
		}
		o.Limits, o.UpdatedAt, o.Revision = l, t, rev
		if created {
			_, err = tx.ExecContext(ctx, `INSERT INTO owners (`+ownerCols+`) VALUES ($1,$2,$3,$4,$5)`,
				o.Name, limitsText(o.Limits), s.tv(o.CreatedAt), s.tv(o.UpdatedAt), o.Revision)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE owners SET limits=$2, updated_at=$3, revision=$4 WHERE name=$1`,
				o.Name, limitsText(o.Limits), s.tv(o.UpdatedAt), o.Revision)
		}
		if err != nil {
			return fmt.Errorf("store: put owner: %w", err)
		}
		out = *o
		return nil
	})
	if err != nil {
		return Owner{}, false, err
	}
	return out, created, nil
}

// PatchOwner applies patch to the owner with the given name.
func (s *Store) PatchOwner(ctx context.Context, name string, patch OwnerPatch) (Owner, error) {
	if err := checkOwnerPatchName(name, patch.Name); err != nil {
		return Owner{}, err
	}
	var out Owner
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		o, err := getOwner(ctx, tx, name)
		if err != nil {
			return err
		}
		l := patch.LimitsPatch.apply(o.Limits)
		if err := validLimits("", &l); err != nil {
			return err
		}
		o.Limits, o.UpdatedAt, o.Revision = l, now(), rev
		if _, err := tx.ExecContext(ctx, `UPDATE owners SET limits=$2, updated_at=$3, revision=$4 WHERE name=$1`,
			o.Name, limitsText(o.Limits), s.tv(o.UpdatedAt), o.Revision); err != nil {
			return fmt.Errorf("store: patch owner: %w", err)
		}
		out = *o
		return nil
	})
	return out, err
}

// DeleteOwner deletes the owner with the given name. Keys that name it keep
// their owner (usage is still accounted to it); only its limits go.
func (s *Store) DeleteOwner(ctx context.Context, name string) error {
	return s.configTx(ctx, func(tx *sql.Tx, _ int64) error {
		o, err := getOwner(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM owners WHERE name = $1`, o.Name); err != nil {
			return fmt.Errorf("store: delete owner: %w", err)
		}
		return nil
	})
}

// loadOwners adds the owners that have limits to snap.
func loadOwners(ctx context.Context, q queryer, snap *llm.Snapshot) error {
	rows, err := q.QueryContext(ctx, `SELECT `+ownerCols+` FROM owners`)
	if err != nil {
		return fmt.Errorf("store: snapshot owners: %w", err)
	}
	for rows.Next() {
		o, err := scanOwner(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("store: snapshot owners: %w", err)
		}
		if o.Limits.IsZero() {
			continue
		}
		snap.Owners[o.Name] = &llm.Owner{Name: o.Name, Limits: o.Limits, Revision: o.Revision}
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("store: snapshot owners: %w", err)
	}
	return nil
}
