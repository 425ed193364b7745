package stage_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/transform"
)

func decode(t *testing.T, m order.Message) order.Order {
	t.Helper()
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	o, err := order.Decode(raw)
	require.NoError(t, err)
	return o
}

func TestCopyStagesRowsUnderTheBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	snap, err := lookup.Load(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	ts := time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)
	orders := []order.Order{
		decode(t, order.Message{OrderID: "ORD-1", CustomerID: "C1", ProductID: "PROD-001", Quantity: 2, UnitPrice: "24.99",
			Currency: "USD", ZipCode: "10001", OrderTimestamp: ts.Format(time.RFC3339), SessionID: "s-1"}),
		// Unknown to the snapshot: enrichment columns stay NULL.
		decode(t, order.Message{OrderID: "ORD-2", CustomerID: "C2", ProductID: "PROD-404", Quantity: 1, UnitPrice: "5",
			Currency: "XYZ", ZipCode: "00000", OrderTimestamp: ts.Format(time.RFC3339)}),
	}
	rows := transform.Apply(orders, snap)

	var n int64
	err = pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		var err error
		n, err = stage.Copy(ctx, tx, env.Tables, "b-1", rows)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()+" WHERE batch_id = 'b-1'"))

	type staged struct {
		RowNo                      int32
		OrderID, Product, Cur, Zip string
		Qty                        int32
		Unit                       string
		TS                         time.Time
		Enriched                   bool
	}
	r, err := env.PG.Query(ctx, "SELECT row_no, order_id, product_id, currency, zip_code, quantity, unit_price::text, order_timestamp, enriched FROM "+
		env.Tables.Staging()+" WHERE batch_id = 'b-1' ORDER BY row_no")
	require.NoError(t, err)
	got, err := pgx.CollectRows(r, pgx.RowToStructByPos[staged])
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.True(t, ts.Equal(got[0].TS))
	require.True(t, ts.Equal(got[1].TS))
	got[0].TS, got[1].TS = time.Time{}, time.Time{}
	require.Equal(t, staged{0, "ORD-1", "PROD-001", "USD", "10001", 2, "24.99", time.Time{}, true}, got[0])
	require.Equal(t, staged{1, "ORD-2", "PROD-404", "XYZ", "00000", 1, "5.00", time.Time{}, false}, got[1],
		"unknown to the snapshot: staged as not enriched, for promotion to look up")
}

func TestCopyNothingAndRollback(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	snap, err := lookup.Load(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	rows := transform.Apply([]order.Order{decode(t, order.Message{OrderID: "ORD-1", CustomerID: "C1", ProductID: "PROD-001",
		Quantity: 1, UnitPrice: "1.00", Currency: "USD", ZipCode: "10001", OrderTimestamp: "2024-01-01T00:00:00Z"})}, snap)

	tx, err := env.PG.Begin(ctx)
	require.NoError(t, err)
	n, err := stage.Copy(ctx, tx, env.Tables, "b-empty", nil)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = stage.Copy(ctx, tx, env.Tables, "b-rolled-back", rows)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.NoError(t, tx.Rollback(ctx))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()), "staging is transactional")
}

func TestCentsIsExact(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	for _, tc := range []struct {
		cents int64
		want  string
	}{{1, "0.01"}, {669, "6.69"}, {-250, "-2.50"}, {100000000000, "1000000000.00"}, {0, "0.00"}} {
		var got string
		require.NoError(t, env.PG.QueryRow(context.Background(), "SELECT ($1::numeric(16,2))::text", stage.Cents(tc.cents)).Scan(&got))
		require.Equal(t, tc.want, got)
	}
}
