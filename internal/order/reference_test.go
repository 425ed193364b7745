package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDecodeReferencePushBatch feeds the decoder the exact bytes the Python
// reference's RedisQueue.push_batch writes (json.dumps of the orders its
// data_generator.py builds, with every timestamp spelling Python producers
// write; testdata/reference/make_push_batch.py made the file) and checks
// each becomes the expected order, or the expected rejection.
func TestDecodeReferencePushBatch(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/reference/push_batch.txt")
	require.NoError(t, err)
	msgs := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))

	const ua = "Mozilla/5.0 (Windows NT 5.1; sl-SI; rv:1.9.1.20) Gecko/2013-06-18 12:57:39 Firefox/3.6.7"
	const session = "c2f7e2d4-5b7a-4d0e-9a51-0d7f4f7f1c11"
	wall := time.Date(2026, 12, 2, 10, 11, 12, 123456000, time.UTC)
	ist := 5*time.Hour + 30*time.Minute
	want := func(n int, ts time.Time, change func(*Order)) Order {
		o := Order{OrderID: fmt.Sprintf("ORD-%012X", n), CustomerID: fmt.Sprintf("CUST-%012X", n), ProductID: "PROD-001",
			Quantity: 3, UnitPriceCents: 129999, Currency: "USD", ZipCode: "10001", OrderTimestamp: ts,
			UserAgent: ua, IP: "192.0.2.44", SessionID: session}
		if change != nil {
			change(&o)
		}
		return o
	}
	whole := wall.Truncate(time.Second)
	expected := []any{
		want(1, wall, nil),           // naive isoformat: UTC by default
		want(2, whole, nil),          // naive, no fraction
		want(3, wall, nil),           // +00:00
		want(4, wall.Add(-ist), nil), // +05:30
		want(5, whole, nil),          // +0000
		want(6, wall.Add(-ist), nil), // +0530
		want(7, whole, nil),          // " UTC"
		want(8, whole.Add(-ist), nil),
		want(9, wall, nil), // Z
		want(10, wall, func(o *Order) { o.Quantity, o.UnitPriceCents, o.Currency, o.ZipCode = 1, 2970, "CAD", "M5H2N2" }),
		want(11, wall, func(o *Order) { o.UnitPriceCents, o.Currency = 130000, "JPY" }),
		want(12, wall, func(o *Order) { o.CustomerID = "42" }),
		want(13, wall, func(o *Order) {
			o.UserAgent, o.IP, o.SessionID = "Opera/8.92.(X11; Linux i686; ta-IN) Presto/2.9.181 Version/12.00", "2001:db8::1", "café"
		}),
		want(14, wall, func(o *Order) { o.UserAgent, o.IP, o.SessionID = "", "", "" }),
		ReasonWrongType,
		ReasonBadTimestamp,
		ReasonMissingField,
	}
	require.Len(t, msgs, len(expected))
	for i, msg := range msgs {
		o, err := Decode(msg)
		switch w := expected[i].(type) {
		case Order:
			require.NoError(t, err, "%s", msg)
			require.Equal(t, w, o, "%s", msg)
			// What is stored decodes to the same order: raw_data keeps it.
			again, err := Decode(AppendMessage(nil, &o))
			require.NoError(t, err)
			require.Equal(t, o, again)
		case string:
			var rej *Rejection
			require.True(t, errors.As(err, &rej), "%s: %v", msg, err)
			require.Equal(t, w, rej.Reason, "%s: %v", msg, rej)
			require.Equal(t, fmt.Sprintf("ORD-%012X", i+1), rej.OrderID)
		}
	}
}

// TestDecodeNaiveZone checks that a timestamp without a zone is a wall
// clock time in Options.NaiveZone, and that one with a zone ignores it.
func TestDecodeNaiveZone(t *testing.T) {
	t.Parallel()
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	tests := []struct {
		zone *time.Location
		ts   string
		want time.Time
	}{
		{nil, "2026-12-02T10:11:12.123456", time.Date(2026, 12, 2, 10, 11, 12, 123456000, time.UTC)},
		{time.UTC, "2026-12-02 10:11:12", time.Date(2026, 12, 2, 10, 11, 12, 0, time.UTC)},
		{kolkata, "2026-12-02T10:11:12.5", time.Date(2026, 12, 2, 4, 41, 12, 500000000, time.UTC)},
		{newYork, "2026-12-02T10:11:12", time.Date(2026, 12, 2, 15, 11, 12, 0, time.UTC)}, // EST, UTC-5
		{newYork, "2026-07-02 10:11:12", time.Date(2026, 7, 2, 14, 11, 12, 0, time.UTC)},  // EDT, UTC-4
		{newYork, "2026-12-02T10:11:12Z", time.Date(2026, 12, 2, 10, 11, 12, 0, time.UTC)},
		{newYork, "2026-12-02T10:11:12+01:00", time.Date(2026, 12, 2, 9, 11, 12, 0, time.UTC)},
		{newYork, "2026-12-02 10:11:12 UTC", time.Date(2026, 12, 2, 10, 11, 12, 0, time.UTC)},
		{newYork, "2026-12-02 10:11:12 GMT", time.Date(2026, 12, 2, 10, 11, 12, 0, time.UTC)},
		{newYork, "2026-12-02 10:11:12 +0100", time.Date(2026, 12, 2, 9, 11, 12, 0, time.UTC)},
		{newYork, "2026-12-02T10:11:12-03:00", time.Date(2026, 12, 2, 13, 11, 12, 0, time.UTC)},
		{newYork, "2026-12-02 10:11:12UTC-0300", time.Date(2026, 12, 2, 13, 11, 12, 0, time.UTC)},
	}
	for _, tc := range tests {
		o, err := Options{NaiveZone: tc.zone}.Decode(with(t, map[string]any{"order_timestamp": tc.ts}))
		require.NoError(t, err, "%s in %v", tc.ts, tc.zone)
		require.Equal(t, tc.want, o.OrderTimestamp, "%s in %v", tc.ts, tc.zone)
		require.Equal(t, time.UTC, o.OrderTimestamp.Location())
	}
}

// TestDecodeOptionalFieldSpellings checks the reference's raw_data and
// ip_address, and which spelling wins when several are given.
func TestDecodeOptionalFieldSpellings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		changes           map[string]any
		ua, ip, sessionID string
	}{
		{map[string]any{"user_agent": nil, "ip": nil, "session_id": nil,
			"raw_data": map[string]any{"user_agent": "u", "ip_address": "1.2.3.4", "session_id": "s"}}, "u", "1.2.3.4", "s"},
		{map[string]any{"ip": nil, "ip_address": "5.6.7.8"}, "curl/8", "5.6.7.8", "s-1"},
		{map[string]any{"raw_data": map[string]any{"user_agent": "u", "ip_address": "1.2.3.4", "session_id": "s"}}, "curl/8", "198.51.100.7", "s-1"},
		{map[string]any{"ip": nil, "raw_data": map[string]any{"ip": "9.9.9.9", "ip_address": "1.2.3.4"}}, "curl/8", "9.9.9.9", "s-1"},
		{map[string]any{"user_agent": nil, "raw_data": json.RawMessage("null")}, "", "198.51.100.7", "s-1"},
		{map[string]any{"raw_data": map[string]any{"user_agent": nil, "other": []int{1}}}, "curl/8", "198.51.100.7", "s-1"},
	}
	for _, tc := range tests {
		changes := map[string]any{"user_agent": "curl/8", "ip": "198.51.100.7", "session_id": "s-1"}
		for k, v := range tc.changes {
			changes[k] = v // nil: absent
		}
		raw := with(t, changes)
		o, err := Decode(raw)
		require.NoError(t, err, "%s", raw)
		require.Equal(t, []string{tc.ua, tc.ip, tc.sessionID}, []string{o.UserAgent, o.IP, o.SessionID}, "%s", raw)
	}
}

func TestDecodeIntegerIDs(t *testing.T) {
	t.Parallel()
	o, err := Decode(with(t, map[string]any{"order_id": json.RawMessage("12345678901234567890123"), "customer_id": json.RawMessage("-7")}))
	require.NoError(t, err)
	require.Equal(t, "12345678901234567890123", o.OrderID, "the digits as written, never through a float")
	require.Equal(t, "-7", o.CustomerID)
	again, err := Decode(with(t, map[string]any{"order_id": "12345678901234567890123", "customer_id": "-7"}))
	require.NoError(t, err)
	require.Equal(t, o, again, "an integer id is the same id as its digits in a string")
}

// TestOversized checks the one cap and the mark that stands for a message
// over it.
func TestOversized(t *testing.T) {
	t.Parallel()
	opt := Options{MaxBytes: 100 << 10}
	big := append([]byte(`{"order_id": "BIG", "x": "`), bytes.Repeat([]byte("y"), 200<<10)...)
	require.Nil(t, opt.Oversized(big[:100<<10]))
	rej := opt.Oversized(big)
	require.NotNil(t, rej)
	require.Equal(t, ReasonTooLarge, rej.Reason)
	require.Equal(t, fmt.Sprintf("%d bytes, limit %d; the dead letter keeps the first %d bytes", len(big), 100<<10, KeptPrefixBytes), rej.Detail)

	mark := opt.Bounded(big)
	require.Len(t, mark, len(oversizedMark)+len(fmt.Sprint(len(big)))+1+KeptPrefixBytes)
	require.True(t, bytes.HasSuffix(mark, big[:KeptPrefixBytes]))
	require.Equal(t, mark, opt.Bounded(mark), "a mark is bounded already")
	require.Equal(t, big[:10], opt.Bounded(big[:10]))
	// The mark is rejected as the message it stands for, with its size,
	// whatever the cap: a replayed dead letter keeps its reason.
	for _, o := range []Options{opt, {}} {
		_, err := o.Decode(mark)
		var r *Rejection
		require.ErrorAs(t, err, &r)
		require.Equal(t, ReasonTooLarge, r.Reason)
		require.Contains(t, r.Detail, fmt.Sprintf("%d bytes", len(big)))
	}
	_, err := Decode(big)
	var r *Rejection
	require.ErrorAs(t, err, &r)
	require.Equal(t, ReasonMalformedJSON, r.Reason, "200 KiB is within the default cap")
}
