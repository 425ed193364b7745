package promote_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/promote"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/transform"
)

// msg is a valid order message; tests break one field at a time.
func msg(id string) order.Message {
	return order.Message{OrderID: id, CustomerID: "CUST-1", ProductID: "PROD-001", Quantity: 2, UnitPrice: "24.99",
		Currency: "USD", ZipCode: "10001", OrderTimestamp: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
}

func rows(t *testing.T, snap *lookup.Snapshot, msgs ...order.Message) []transform.Row {
	t.Helper()
	var orders []order.Order
	for _, m := range msgs {
		raw, err := json.Marshal(m)
		require.NoError(t, err)
		o, err := order.Decode(raw)
		require.NoError(t, err, "message %s must decode; promotion is what rejects it", m.OrderID)
		orders = append(orders, o)
	}
	return transform.Apply(orders, snap)
}

func snapshot(t *testing.T, env *testenv.Env) *lookup.Snapshot {
	t.Helper()
	snap, err := lookup.Load(context.Background(), env.PG, env.Tables)
	require.NoError(t, err)
	return snap
}

// stageAndPromote copies rs under batchID and promotes them in one
// transaction, as a worker does.
func stageAndPromote(t *testing.T, env *testenv.Env, batchID string, rs []transform.Row) promote.Result {
	t.Helper()
	ctx := context.Background()
	var res promote.Result
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		n, err := stage.Copy(ctx, tx, env.Tables, batchID, rs)
		if err != nil {
			return err
		}
		require.Equal(t, int64(len(rs)), n)
		res, err = promote.Batch(ctx, tx, env.Tables, batchID, rs)
		return err
	}))
	return res
}

func TestBatchPromotesValidRowsAndRejectsInvalidOnes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	snap := snapshot(t, env)

	v2 := msg("ORD-V2")
	v2.ProductID, v2.Quantity, v2.UnitPrice, v2.Currency, v2.ZipCode = "PROD-004", 1, "249.99", "EUR", "98101"
	bad := map[string]func(*order.Message){
		"R-PRODUCT":  func(m *order.Message) { m.ProductID = "PROD-404" },
		"R-CURRENCY": func(m *order.Message) { m.Currency = "XYZ" },
		"R-ZIP":      func(m *order.Message) { m.ZipCode = "00000" },
		"R-QTY0":     func(m *order.Message) { m.Quantity = 0 },
		"R-QTY1001":  func(m *order.Message) { m.Quantity = 1001 },
		"R-PRICE0":   func(m *order.Message) { m.UnitPrice = "0.00" },
		"R-PRICENEG": func(m *order.Message) { m.UnitPrice = "-5.00" },
		"R-FUTURE":   func(m *order.Message) { m.OrderTimestamp = time.Now().AddDate(2, 0, 0).UTC().Format(time.RFC3339) },
	}
	want := map[string]struct{ reason, detail string }{
		"R-PRODUCT":  {order.ReasonUnknownProduct, "PROD-404"},
		"R-CURRENCY": {order.ReasonUnknownCurrency, "XYZ"},
		"R-ZIP":      {order.ReasonUnknownZip, "00000"},
		"R-QTY0":     {order.ReasonQuantityRange, "quantity 0"},
		"R-QTY1001":  {order.ReasonQuantityRange, "quantity 1001"},
		"R-PRICE0":   {order.ReasonPriceNotPos, "0.00"},
		"R-PRICENEG": {order.ReasonPriceNotPos, "-5.00"},
		"R-FUTURE":   {order.ReasonFutureTimestamp, "ahead"},
	}
	msgs := []order.Message{msg("ORD-V1"), v2}
	for id, breakIt := range bad {
		m := msg(id)
		breakIt(&m)
		msgs = append(msgs, m)
	}

	res := stageAndPromote(t, env, "b-1", rows(t, snap, msgs...))
	require.Equal(t, int64(10), res.Staged)
	require.Equal(t, int64(8), res.Rejected)
	require.Zero(t, res.Duplicates())
	slices.Sort(res.Promoted)
	require.Equal(t, []string{"ORD-V1", "ORD-V2"}, res.Promoted)

	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()), "promotion deletes the batch's staging rows")

	r, err := env.PG.Query(ctx, "SELECT order_id, reason, detail, raw_payload, batch_id FROM "+env.Tables.Rejected())
	require.NoError(t, err)
	type letter struct {
		OrderID, Reason, Detail string
		Raw                     []byte
		Batch                   string
	}
	letters, err := pgx.CollectRows(r, pgx.RowToStructByPos[letter])
	require.NoError(t, err)
	require.Len(t, letters, 8)
	for _, l := range letters {
		w, ok := want[l.OrderID]
		require.True(t, ok, "unexpected dead letter %s", l.OrderID)
		require.Equal(t, w.reason, l.Reason, l.OrderID)
		require.Contains(t, l.Detail, w.detail, l.OrderID)
		require.Equal(t, "b-1", l.Batch)
		var m order.Message
		require.NoError(t, json.Unmarshal(l.Raw, &m), "the payload of a promotion reject is its normalised message")
		require.Equal(t, l.OrderID, m.OrderID)
	}

	// The promoted row carries its enrichment and exact totals.
	var name, category, city, zone, country, currency, total, usd string
	var qty int32
	var processed time.Time
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT product_name, category, city, shipping_zone::text, country, currency, quantity,"+
		" total_amount::text, total_amount_usd::text, processed_at FROM "+env.Tables.Orders()+" WHERE order_id = 'ORD-V2'").
		Scan(&name, &category, &city, &zone, &country, &currency, &qty, &total, &usd, &processed))
	require.Equal(t, []string{"Mechanical Keyboard", "Electronics", "Seattle", "2", "US", "EUR"}, []string{name, category, city, zone, country, currency})
	require.Equal(t, int32(1), qty)
	require.Equal(t, "249.99", total)
	require.Equal(t, "271.73", usd, "249.99 EUR at 0.92 EUR per USD")
	require.False(t, processed.IsZero())
}

func TestBatchCountsDuplicatesWithoutInsertingTwice(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	snap := snapshot(t, env)

	first := stageAndPromote(t, env, "b-1", rows(t, snap, msg("A"), msg("B")))
	require.ElementsMatch(t, []string{"A", "B"}, first.Promoted)

	changed := msg("B")
	changed.Quantity = 7 // the first version of an order id wins
	second := stageAndPromote(t, env, "b-2", rows(t, snap, changed, msg("C"), msg("C")))
	require.Equal(t, []string{"C"}, second.Promoted)
	require.Equal(t, int64(3), second.Staged)
	require.Equal(t, int64(2), second.Duplicates())
	require.Zero(t, second.Rejected)

	require.Equal(t, int64(3), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Equal(t, int64(2), env.Count(t, "SELECT quantity FROM "+env.Tables.Orders()+" WHERE order_id = 'B'"))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
}

func TestBatchDeletesOnlyItsOwnStagingRows(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	snap := snapshot(t, env)

	// Another batch is staged (and committed) meanwhile.
	other := rows(t, snap, msg("X1"), msg("X2"))
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		_, err := stage.Copy(ctx, tx, env.Tables, "b-other", other)
		return err
	}))

	res := stageAndPromote(t, env, "b-mine", rows(t, snap, msg("M1"), msg("M2"), msg("M3")))
	require.Equal(t, int64(3), res.Staged)
	require.Len(t, res.Promoted, 3)
	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()+" WHERE batch_id = 'b-other'"),
		"the seed's TRUNCATE lost other batches' rows; promotion must not")

	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		r, err := promote.Batch(ctx, tx, env.Tables, "b-other", other)
		require.Len(t, r.Promoted, 2)
		return err
	}))
	require.Equal(t, int64(5), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()))
}

func TestBatchKeepsTheFirstOfRepeatedIDs(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	snap := snapshot(t, env)
	z, later := msg("Z"), msg("Z")
	z.Quantity, later.Quantity = 3, 7
	bad := msg("Y")
	bad.Quantity = 0
	res := stageAndPromote(t, env, "b-rep", rows(t, snap, z, bad, later, msg("Y"), msg("A")))
	require.Equal(t, []string{"A", "Y", "Z"}, res.Promoted, "promoted in order_id order")
	require.Equal(t, int64(1), res.Rejected, "the invalid copy of Y is dead-lettered")
	require.Equal(t, int64(1), res.Duplicates(), "the second Z")
	require.Equal(t, int64(3), env.Count(t, "SELECT quantity FROM "+env.Tables.Orders()+" WHERE order_id = 'Z'"), "the first Z wins")
	require.Equal(t, int64(2), env.Count(t, "SELECT quantity FROM "+env.Tables.Orders()+" WHERE order_id = 'Y'"))
}

// Two batches promote the same new order id at once. Neither sees the
// other's uncommitted row when it checks; the second one's COPY waits on
// the first one's insert, the primary key refuses it once the first
// commits, and the second batch is checked again and counts it as a
// duplicate instead of failing.
func TestConcurrentBatchesSharingAnIDPromoteItOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	snap := snapshot(t, env)
	first, second := rows(t, snap, msg("N1"), msg("SHARED")), rows(t, snap, msg("N2"), msg("SHARED"))

	txA, err := env.PG.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = txA.Rollback(ctx) }()
	_, err = stage.Copy(ctx, txA, env.Tables, "b-a", first)
	require.NoError(t, err)
	resA, err := promote.Batch(ctx, txA, env.Tables, "b-a", first)
	require.NoError(t, err)
	require.Equal(t, []string{"N1", "SHARED"}, resA.Promoted)

	type outcome struct {
		res promote.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		o.err = pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
			if _, err := stage.Copy(ctx, tx, env.Tables, "b-b", second); err != nil {
				return err
			}
			var err error
			o.res, err = promote.Batch(ctx, tx, env.Tables, "b-b", second)
			return err
		})
		done <- o
	}()
	// Let the second batch reach the row lock of SHARED before the first commits.
	require.Eventually(t, func() bool {
		return env.Count(t, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 in query) > 0",
			env.Tables.Orders()) > 0
	}, 10*time.Second, 10*time.Millisecond, "the second batch should wait on the first one's insert")
	require.NoError(t, txA.Commit(ctx))

	o := <-done
	require.NoError(t, o.err)
	require.Equal(t, []string{"N2"}, o.res.Promoted)
	require.Equal(t, int64(1), o.res.Duplicates())
	require.Equal(t, int64(3), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()))
}

func TestStaleSnapshotIsFilledFromTheTables(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	snap := snapshot(t, env)
	// The snapshot predates these entries (or lost them): enrichment is nil.
	delete(snap.Products, "PROD-003")
	delete(snap.Currencies, "JPY")
	delete(snap.Zips, "60601")

	m := msg("ORD-STALE")
	m.ProductID, m.Currency, m.ZipCode, m.Quantity, m.UnitPrice = "PROD-003", "JPY", "60601", 1, "1000"
	rs := rows(t, snap, m)
	require.Nil(t, rs[0].ProductName)
	require.Nil(t, rs[0].TotalUSDCents)
	require.Nil(t, rs[0].City)

	res := stageAndPromote(t, env, "b-stale", rs)
	require.Equal(t, []string{"ORD-STALE"}, res.Promoted, "a cache miss must not drop or reject a valid order")
	require.Nil(t, rs[0].ProductName, "promotion fills a copy, not the caller's row")

	var name, category, city, state, zone, usd string
	require.NoError(t, env.PG.QueryRow(context.Background(), "SELECT product_name, category, city, state, shipping_zone::text, total_amount_usd::text FROM "+
		env.Tables.Orders()+" WHERE order_id = 'ORD-STALE'").Scan(&name, &category, &city, &state, &zone, &usd))
	require.Equal(t, []string{"USB-C Hub", "Electronics", "Chicago", "IL", "1", "6.69"}, []string{name, category, city, state, zone, usd})
}

func TestJPYConvertsByDividing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	m := msg("ORD-JPY")
	m.Currency, m.UnitPrice, m.Quantity = "JPY", "1000", 1
	res := stageAndPromote(t, env, "b-jpy", rows(t, snapshot(t, env), m))
	require.Equal(t, []string{"ORD-JPY"}, res.Promoted)
	var total, usd string
	require.NoError(t, env.PG.QueryRow(context.Background(), "SELECT total_amount::text, total_amount_usd::text FROM "+
		env.Tables.Orders()+" WHERE order_id = 'ORD-JPY'").Scan(&total, &usd))
	require.Equal(t, "1000.00", total)
	require.Equal(t, "6.69", usd, "1000 JPY at 149.5 JPY per USD (the seed said 149500)")
}

func TestBatchWithNothingStaged(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		r, err := promote.Batch(ctx, tx, env.Tables, "b-none", nil)
		require.Zero(t, r.Staged)
		require.Empty(t, r.Promoted)
		require.Zero(t, r.Duplicates())
		return err
	}))
}

func TestRejectStoresDeadLettersVerbatim(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	raw := []byte("{\"order_id\": \xff\xfe broken")
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		require.NoError(t, promote.Reject(ctx, tx, env.Tables, "b-x", nil))
		return promote.Reject(ctx, tx, env.Tables, "b-x", []promote.Rejection{
			{Reason: order.ReasonInvalidUTF8, Detail: "payload is not valid UTF-8", Raw: raw},
			{OrderID: "ORD-9", Reason: order.ReasonMissingField, Detail: "zip_code is required", Raw: []byte(`{"order_id":"ORD-9"}`)},
		})
	}))
	var orderID *string
	var got []byte
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT order_id, raw_payload FROM "+env.Tables.Rejected()+" WHERE reason = $1",
		order.ReasonInvalidUTF8).Scan(&orderID, &got))
	require.Nil(t, orderID, "an unknown order id is stored as NULL")
	require.Equal(t, raw, got)
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE order_id = 'ORD-9' AND batch_id = 'b-x'"))
}

// TestHalfCentsRoundTheSameOnBothPaths: an order's USD total is the same
// whether the worker computed it from the snapshot (Go) or promotion
// filled it from the tables (SQL), on exact half cents too. 185.47 CAD at
// 1.36 CAD per USD is exactly 136.375 USD: both paths give 136.38, where a
// float division gave 136.37 on the Go path.
func TestHalfCentsRoundTheSameOnBothPaths(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	// The case: 1.36 CAD per USD (the reference seeds 1.35).
	_, err := env.PG.Exec(ctx, "UPDATE "+env.Tables.Currencies()+" SET rate_to_usd = 1.36 WHERE currency_code = 'CAD'")
	require.NoError(t, err)
	snap := snapshot(t, env)
	rate := snap.Currencies["CAD"]
	require.Equal(t, "1.36", rate.String())

	// Every CAD amount of a unit up to 300.00 whose USD value is an exact
	// half cent, in both paths.
	var cases []string
	for cents := int64(1); cents <= 30000; cents++ {
		if (cents*100*2)%136 == 0 && (cents*100*2/136)%2 == 1 {
			cases = append(cases, order.FormatCents(cents))
		}
	}
	require.Contains(t, cases, "185.47")
	require.Greater(t, len(cases), 50)

	noCAD := snapshot(t, env)
	delete(noCAD.Currencies, "CAD")
	var goRows, sqlRows []order.Message
	for i, price := range cases {
		m := msg(fmt.Sprintf("GO-%04d", i))
		m.Currency, m.UnitPrice, m.Quantity = "CAD", price, 1
		goRows = append(goRows, m)
		m.OrderID = fmt.Sprintf("SQL-%04d", i)
		sqlRows = append(sqlRows, m)
	}
	gr := rows(t, snap, goRows...)
	for _, r := range gr {
		require.NotNil(t, r.TotalUSDCents, "the Go path computes it")
	}
	sr := rows(t, noCAD, sqlRows...)
	for _, r := range sr {
		require.Nil(t, r.TotalUSDCents, "the SQL path computes it")
	}
	require.Len(t, stageAndPromote(t, env, "b-go", gr).Promoted, len(cases))
	require.Len(t, stageAndPromote(t, env, "b-sql", sr).Promoted, len(cases))

	q, err := env.PG.Query(ctx, "SELECT g.total_amount::text, g.total_amount_usd::text, s.total_amount_usd::text FROM "+env.Tables.Orders()+
		" g JOIN "+env.Tables.Orders()+" s ON s.order_id = 'SQL-' || substr(g.order_id, 4) WHERE g.order_id LIKE 'GO-%' ORDER BY g.order_id")
	require.NoError(t, err)
	var amount, goUSD, sqlUSD string
	n := 0
	_, err = pgx.ForEachRow(q, []any{&amount, &goUSD, &sqlUSD}, func() error {
		require.Equal(t, sqlUSD, goUSD, "%s CAD", amount)
		c, err := strconv.ParseInt(strings.Replace(amount, ".", "", 1), 10, 64)
		require.NoError(t, err)
		require.Equal(t, order.FormatCents((c*100*2/136+1)/2), goUSD, "%s CAD / 1.36 is a half cent, rounded up", amount)
		n++
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, len(cases), n)
	var usd string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT total_amount_usd::text FROM "+env.Tables.Orders()+
		" WHERE order_id LIKE 'GO-%' AND total_amount = 185.47").Scan(&usd))
	require.Equal(t, "136.38", usd)
}

// TestGoAndSQLConvertAlike compares money.ToUSDCents with the SQL that
// promotion runs, on PostgreSQL, over many amounts at the seeded rates and
// at rates with six decimals.
func TestGoAndSQLConvertAlike(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	rates := []string{"1", "0.92", "0.79", "149.5", "1.36", "1.53", "83.2", "0.000001", "3.333333", "999999.999999", "7"}
	expr := money.USDCentsSQL("(t::numeric)", "$1::numeric") + "::text"
	for _, rs := range rates {
		rate := money.MustRate(rs)
		q, err := env.PG.Query(ctx, "SELECT t, "+expr+" FROM generate_series(-20000::bigint, 20000) t "+
			"UNION ALL SELECT t, "+expr+" FROM unnest($2::bigint[]) t", rs,
			[]int64{99999999999999, -99999999999999, 18547, 123456789, 1 << 40})
		require.NoError(t, err)
		var cents int64
		var usd string
		halves := 0
		_, err = pgx.ForEachRow(q, []any{&cents, &usd}, func() error {
			got := money.ToUSDCents(cents, rate)
			if got == math.MaxInt64 || got == math.MinInt64 {
				// Saturated: beyond bigint in SQL too, and beyond the column.
				if n, ok := new(big.Int).SetString(usd, 10); !ok || n.IsInt64() {
					return fmt.Errorf("%d cents at %s: Go saturated, SQL %s", cents, rs, usd)
				}
				return nil
			}
			if strconv.FormatInt(got, 10) != usd {
				return fmt.Errorf("%d cents at %s: Go %d, SQL %s", cents, rs, got, usd)
			}
			if r := new(big.Rat).Mul(big.NewRat(cents, 1), new(big.Rat).Inv(ratRate(t, rs))); r.Denom().Cmp(big.NewInt(2)) == 0 {
				halves++
			}
			return nil
		})
		require.NoError(t, err)
		if rs == "1.36" || rs == "83.2" {
			require.NotZero(t, halves, "the sweep at %s crosses exact half cents", rs)
		}
	}
}

func ratRate(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	require.True(t, ok)
	return r
}

// Copies of one order id: validity is decided first, so an invalid copy is
// a dead letter wherever it stands and the first valid copy is promoted; a
// row marked seen (its id promoted already) is a duplicate when valid and a
// dead letter when not.
func TestBatchSeenDecidesValidityBeforeDuplication(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	snap := snapshot(t, env)

	bad := func(id, customer string) order.Message {
		m := msg(id)
		m.ProductID, m.CustomerID = "PROD-404", customer
		return m
	}
	good := func(id, customer string) order.Message {
		m := msg(id)
		m.CustomerID = customer
		return m
	}
	rs := rows(t, snap,
		bad("A", "C-1"), good("A", "C-2"), good("A", "C-3"), // invalid first: the first valid copy wins
		good("B", "C-1"), bad("B", "C-2"), // an invalid repeat is still a letter
		good("S", "C-1"), bad("S", "C-2"), // seen: a valid copy is a duplicate, an invalid one a letter
	)
	seen := []bool{false, false, false, false, false, true, true}
	var res promote.Result
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		if _, err := stage.Copy(ctx, tx, env.Tables, "b-seen", rs); err != nil {
			return err
		}
		var err error
		res, err = promote.BatchSeen(ctx, tx, env.Tables, "b-seen", rs, seen)
		return err
	}))
	slices.Sort(res.Promoted)
	require.Equal(t, []string{"A", "B"}, res.Promoted)
	require.Equal(t, int64(3), res.Rejected)
	require.Equal(t, int64(2), res.Duplicates(), "A's third copy and S's valid one")
	var customers []string
	r, err := env.PG.Query(ctx, "SELECT order_id || ' ' || customer_id FROM "+env.Tables.Orders()+" ORDER BY 1")
	require.NoError(t, err)
	customers, err = pgx.CollectRows(r, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"A C-2", "B C-1"}, customers)
	require.Equal(t, int64(3), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = $1", order.ReasonUnknownProduct))

	require.Error(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		_, err := promote.BatchSeen(ctx, tx, env.Tables, "b-short", rs, seen[:2])
		return err
	}), "seen marks must match the rows")
}
