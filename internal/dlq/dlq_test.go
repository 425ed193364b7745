package dlq_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/promote"
	"github.com/redpg/redpg/internal/testenv"
)

func reject(t *testing.T, env *testenv.Env, batchID string, rs ...promote.Rejection) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		return promote.Reject(ctx, tx, env.Tables, batchID, rs)
	}))
}

func TestListFiltersByReasonOldestFirst(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	reject(t, env, "b-1",
		promote.Rejection{OrderID: "ORD-1", Reason: order.ReasonUnknownProduct, Detail: "product_id PROD-404 is not in product_catalog", Raw: []byte(`{"order_id":"ORD-1"}`)},
		promote.Rejection{Reason: order.ReasonMalformedJSON, Detail: "unexpected end of JSON input", Raw: []byte(`{"order_id": `)},
	)
	reject(t, env, "b-2",
		promote.Rejection{OrderID: "ORD-3", Reason: order.ReasonUnknownProduct, Detail: "product_id PROD-405 is not in product_catalog", Raw: []byte(`{"order_id":"ORD-3"}`)},
	)

	all, err := dlq.List(ctx, env.PG, env.Tables, dlq.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 3)
	for i := 1; i < len(all); i++ {
		require.Less(t, all[i-1].ID, all[i].ID, "oldest first")
	}
	require.Equal(t, "", all[1].OrderID)
	require.Equal(t, "b-1", all[1].BatchID)
	require.False(t, all[0].RejectedAt.IsZero())
	require.Nil(t, all[0].Payload, "List leaves payloads out")

	unknown, err := dlq.List(ctx, env.PG, env.Tables, dlq.Filter{Reason: order.ReasonUnknownProduct})
	require.NoError(t, err)
	require.Len(t, unknown, 2)
	require.Equal(t, []string{"ORD-1", "ORD-3"}, []string{unknown[0].OrderID, unknown[1].OrderID})
	require.Contains(t, unknown[1].Detail, "PROD-405")
	require.Equal(t, "b-2", unknown[1].BatchID)

	limited, err := dlq.List(ctx, env.PG, env.Tables, dlq.Filter{Limit: 1})
	require.NoError(t, err)
	require.Len(t, limited, 1)
	require.Equal(t, all[0].ID, limited[0].ID)

	none, err := dlq.List(ctx, env.PG, env.Tables, dlq.Filter{Reason: "no_such_reason"})
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestListDefaultLimit(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	var rs []promote.Rejection
	for i := range 60 {
		rs = append(rs, promote.Rejection{OrderID: fmt.Sprintf("ORD-%d", i), Reason: order.ReasonUnknownZip, Raw: []byte("{}")})
	}
	reject(t, env, "b-1", rs...)
	letters, err := dlq.List(context.Background(), env.PG, env.Tables, dlq.Filter{})
	require.NoError(t, err)
	require.Len(t, letters, 50)
}

func TestShowReturnsTheExactPayload(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	raw := []byte("{\"order_id\":\"ORD-\xc3\x28\", \"x\": \"\x00\xff\"}") // not UTF-8, with a NUL
	reject(t, env, "b-bin", promote.Rejection{Reason: order.ReasonInvalidUTF8, Detail: "payload is not valid UTF-8", Raw: raw})

	letters, err := dlq.List(ctx, env.PG, env.Tables, dlq.Filter{Reason: order.ReasonInvalidUTF8})
	require.NoError(t, err)
	require.Len(t, letters, 1)

	l, err := dlq.Show(ctx, env.PG, env.Tables, letters[0].ID)
	require.NoError(t, err)
	require.Equal(t, raw, l.Payload, "dead letters keep the bytes that arrived")
	require.Equal(t, order.ReasonInvalidUTF8, l.Reason)
	require.Equal(t, "payload is not valid UTF-8", l.Detail)
	require.Equal(t, "b-bin", l.BatchID)
	require.Equal(t, letters[0].ID, l.ID)

	_, err = dlq.Show(ctx, env.PG, env.Tables, letters[0].ID+1000)
	require.ErrorContains(t, err, "no dead letter")
}

func TestCountByReason(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	counts, err := dlq.CountByReason(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Empty(t, counts)

	reject(t, env, "b-1",
		promote.Rejection{Reason: order.ReasonMalformedJSON, Raw: []byte("{")},
		promote.Rejection{Reason: order.ReasonMalformedJSON, Raw: []byte("[")},
		promote.Rejection{OrderID: "O", Reason: order.ReasonQuantityRange, Raw: []byte("{}")},
	)
	counts, err = dlq.CountByReason(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{order.ReasonMalformedJSON: 2, order.ReasonQuantityRange: 1}, counts)
}
