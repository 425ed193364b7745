package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier is the part of a pgx pool or connection Pending needs.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Pending returns the versions of the embedded migrations not yet applied
// to schemaName, without applying them: readiness checks use it to tell a
// process whose binary is newer than its schema. A schema never migrated
// has every migration pending.
func Pending(ctx context.Context, db Querier, schemaName string) ([]int, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	ledger := pgx.Identifier{schemaName, "redpg_migrations"}.Sanitize()
	var exists bool
	if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ledger).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for %s: %w", ledger, err)
	}
	done := map[int]bool{}
	if exists {
		rows, err := db.Query(ctx, "SELECT version FROM "+ledger)
		if err != nil {
			return nil, err
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			done[int(v)] = true
		}
	}
	var pending []int
	for _, m := range migs {
		if !done[m.Version] {
			pending = append(pending, m.Version)
		}
	}
	return pending, nil
}
