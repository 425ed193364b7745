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

	var (
		name, city, zone   *string
		qty                int32
		unit, total, usd   *string
		gotTS              time.Time
		rawOrderID, rawSID string
	)
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT product_name, city, shipping_zone, quantity, unit_price::text, total_amount::text, total_amount_usd::text,"+
		" order_timestamp, raw_data->>'order_id', raw_data->>'session_id' FROM "+env.Tables.Staging()+" WHERE order_id = 'ORD-1'").
		Scan(&name, &city, &zone, &qty, &unit, &total, &usd, &gotTS, &rawOrderID, &rawSID))
	require.Equal(t, "Wireless Mouse", *name)
	require.Equal(t, "New York", *city)
	require.Equal(t, "Zone-1", *zone)
	require.Equal(t, int32(2), qty)
	require.Equal(t, "24.99", *unit)
	require.Equal(t, "49.98", *total)
	require.Equal(t, "49.98", *usd)
	require.True(t, ts.Equal(gotTS))
	require.Equal(t, "ORD-1", rawOrderID)
	require.Equal(t, "s-1", rawSID)

	require.NoError(t, env.PG.QueryRow(ctx, "SELECT product_name, city, shipping_zone, total_amount_usd::text FROM "+
		env.Tables.Staging()+" WHERE order_id = 'ORD-2'").Scan(&name, &city, &zone, &usd))
	require.Nil(t, name)
	require.Nil(t, city)
	require.Nil(t, zone)
	require.Nil(t, usd)
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
