package llm

import "time"

// Admin roles.
const (
	// RoleAdmin may do everything the admin API offers.
	RoleAdmin = "admin"
	// RoleViewer may read (GET and HEAD) the admin API's configuration,
	// usage and health, but not manage admin keys, run the profiler or
	// change anything.
	RoleViewer = "viewer"
)

// ValidRole reports whether r is a known admin role.
func ValidRole(r string) bool { return r == RoleAdmin || r == RoleViewer }

// AdminKey is an admin API key as the admin API's authentication sees it.
// The secret itself is never kept: Hash is the hex SHA-256 of the key
// (AppendKeyHash).
type AdminKey struct {
	ID     string
	Name   string
	Prefix string
	Hash   string
	// Role is RoleAdmin or RoleViewer.
	Role      string
	ExpiresAt *time.Time
	Disabled  bool
	// Revision is the configuration version that last changed the row.
	Revision int64
}

// Usable reports whether the key may authenticate at now: not disabled and
// not expired.
func (k *AdminKey) Usable(now time.Time) bool {
	return !k.Disabled && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}
