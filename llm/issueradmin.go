package llm

// IssuerAdmin makes an issuer's tokens admin API credentials as well (see
// Issuer.Admin). A token is accepted on the admin API only when it names
// one of Audiences in "aud" — audiences apart from the issuer's proxy
// audiences, so a token minted for the gateway never opens the admin API —
// and its RoleClaim holds one of the values listed for a role.
type IssuerAdmin struct {
	// Audiences: an admin token must name at least one of them.
	Audiences []string `json:"audiences"`
	// RoleClaim names the claim holding the caller's roles or groups: a
	// string or an array of strings.
	RoleClaim string `json:"role_claim"`
	// Admin lists the claim values that grant RoleAdmin.
	Admin []string `json:"admin"`
	// Viewer lists the claim values that grant RoleViewer.
	Viewer []string `json:"viewer"`
}

// Role returns the role the claim's values grant: RoleAdmin when any is
// listed in Admin, else RoleViewer when any is in Viewer, else "".
func (a *IssuerAdmin) Role(values []string) string {
	role := ""
	for _, v := range values {
		for _, w := range a.Admin {
			if v == w {
				return RoleAdmin
			}
		}
		for _, w := range a.Viewer {
			if v == w {
				role = RoleViewer
			}
		}
	}
	return role
}
