package schema_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
)

func TestPendingListsUnappliedMigrations(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()

	pending, err := schema.Pending(ctx, env.PG, env.Schema)
	require.NoError(t, err)
	require.Empty(t, pending, "a migrated schema has nothing pending")

	migs, err := schema.Migrations()
	require.NoError(t, err)
	last := migs[len(migs)-1].Version
	_, err = env.PG.Exec(ctx, "DELETE FROM "+pgx.Identifier{env.Schema, "redpg_migrations"}.Sanitize()+" WHERE version = $1", last)
	require.NoError(t, err)
	pending, err = schema.Pending(ctx, env.PG, env.Schema)
	require.NoError(t, err)
	require.Equal(t, []int{last}, pending)

	pending, err = schema.Pending(ctx, env.PG, "never_migrated_"+testenv.ID())
	require.NoError(t, err)
	require.Len(t, pending, len(migs), "a schema never migrated has every migration pending")
}
