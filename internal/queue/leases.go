package queue

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is one worker's entry in the lease set: its heartbeat is alive
// while Deadline is in the future.
type Lease struct {
	Worker   string    `json:"worker"`
	Deadline time.Time `json:"lease_deadline"`
}

// Leases lists the workers holding a lease, soonest deadline first, at
// most limit of them (limit < 1: all), for dashboards that show each
// worker's heartbeat.
func (q *Queue) Leases(ctx context.Context, limit int) ([]Lease, error) {
	stop := int64(limit) - 1
	if limit < 1 {
		stop = -1
	}
	zs, err := q.rdb.ZRangeWithScores(ctx, q.cfg.Keys.Workers(), 0, stop).Result()
	if err != nil && err != redis.Nil {
		return nil, err
	}
	out := make([]Lease, 0, len(zs))
	for _, z := range zs {
		name, _ := z.Member.(string)
		out = append(out, Lease{Worker: name, Deadline: time.UnixMilli(int64(z.Score)).UTC()})
	}
	return out, nil
}
