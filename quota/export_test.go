package quota

// KeepBudgets makes m keep budget counters past their period, as Redis
// does while its keys' expiry (by the server's clock) has not come.
func KeepBudgets(m *Memory) *Memory {
	m.keepBudgets = true
	return m
}

// IsSplit reports whether r runs one script per subject.
func IsSplit(r *Redis) bool { return r.split }

// HealthKeyForTest is the health key of deployment id under prefix.
func HealthKeyForTest(prefix, id string) string {
	return (&HealthSync{o: HealthSyncOptions{Prefix: prefix}}).healthKey(id)
}
