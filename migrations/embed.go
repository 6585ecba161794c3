// Package migrations embeds Sluice's SQL schema migrations, one directory per
// database dialect (sqlite/ and postgres/), in goose's annotated SQL format.
package migrations

import "embed"

// FS holds sqlite/*.sql and postgres/*.sql. Pass fs.Sub(FS, dialect) to goose.
//
//go:embed sqlite/*.sql postgres/*.sql
var FS embed.FS
