// Package pgserver reads what redpg reports about the PostgreSQL servers
// themselves rather than its tables: the version, the asynchronous I/O
// method of PostgreSQL 18, and how far a read replica lags its primary.
//
// Every query here exists on PostgreSQL 14 and later; settings that a
// version lacks are asked for only when the server is new enough, so an
// older server never sees an unknown parameter.
package pgserver

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DB is what the package needs of a connection or pool.
type DB interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// IOMethodSince is the first server_version_num with io_method (18.0).
const IOMethodSince = 180000

// Info is a server's version and, from PostgreSQL 18 on, its I/O method.
type Info struct {
	Version    string `json:"server_version"`
	VersionNum int    `json:"server_version_num"`
	// IOMethod is io_method (sync, worker or io_uring) on PostgreSQL 18
	// and later, empty before.
	IOMethod string `json:"io_method,omitempty"`
}

// Read returns db's server version and, on 18 and later, io_method.
func Read(ctx context.Context, db DB) (Info, error) {
	var in Info
	if err := db.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int").
		Scan(&in.Version, &in.VersionNum); err != nil {
		return in, fmt.Errorf("server version: %w", err)
	}
	if in.VersionNum >= IOMethodSince {
		if err := db.QueryRow(ctx, "SHOW io_method").Scan(&in.IOMethod); err != nil {
			return in, fmt.Errorf("io_method: %w", err)
		}
	}
	return in, nil
}

// Lag is how far a read server is behind the primary.
type Lag struct {
	// Standby says the read server is in recovery, i.e. a replica. A read
	// URL pointing at a primary reports false and no lag.
	Standby bool `json:"standby"`
	// Bytes is the WAL the primary has written that the replica has not
	// replayed yet.
	Bytes int64 `json:"lag_bytes"`
	// Seconds is how old the last transaction the replica replayed is,
	// when it has WAL left to replay; 0 when it has replayed everything
	// (an idle primary makes no transactions to compare with).
	Seconds float64 `json:"lag_seconds"`
	// ReplayPaused says replay was paused (pg_wal_replay_pause).
	ReplayPaused bool `json:"replay_paused"`
}

// ReplicaLag compares replica with primary. The replica is read first, so
// the lag is never under-reported.
func ReplicaLag(ctx context.Context, primary, replica DB) (Lag, error) {
	var l Lag
	var replayed *string
	var age *float64
	err := replica.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
		extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
		CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END`).
		Scan(&l.Standby, &replayed, &age, &l.ReplayPaused)
	if err != nil {
		return l, fmt.Errorf("read replica's position: %w", err)
	}
	if !l.Standby || replayed == nil {
		return l, nil
	}
	if err := primary.QueryRow(ctx, "SELECT greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn), 0)::bigint", *replayed).
		Scan(&l.Bytes); err != nil {
		return l, fmt.Errorf("compare with the primary's WAL position: %w", err)
	}
	if l.Bytes > 0 && age != nil {
		l.Seconds = max(*age, 0)
	}
	return l, nil
}
