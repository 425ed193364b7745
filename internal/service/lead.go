package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
)

// lookupChannel is the NOTIFY channel of migration 005's triggers.
const lookupChannel = "redpg_lookups"

// lead plays the single-actor roles while this process holds the leader
// lock: it names itself in Redis, refreshes the views, and watches the
// lookup tables on conn, the session holding the lock. It returns when ctx
// ends or conn breaks.
func (s *Service) lead(ctx context.Context, conn *pgx.Conn) error {
	s.leading.Store(true)
	defer s.leading.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, 2)
	go func() { s.announceLeader(ctx); done <- struct{}{} }()
	go func() { s.refresh(ctx); done <- struct{}{} }()
	err := s.watchLookups(ctx, conn)
	cancel()
	<-done
	<-done
	return err
}

// announceLeader names this process in the leader key while it leads, so
// `redpg stats` and operators can see who holds the roles. The key expires
// by itself three polls after a leader dies.
func (s *Service) announceLeader(ctx context.Context) {
	k := s.pipe.Config().Keys.Leader()
	ttl := 3 * s.cfg.LeaderPoll
	tick := time.NewTicker(s.cfg.LeaderPoll)
	defer tick.Stop()
	for {
		s.rdb.Set(ctx, k, s.cfg.Name, max(ttl, time.Second))
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			unsetIfEqual.Run(dctx, s.rdb, []string{k}, s.cfg.Name)
			cancel()
			return
		case <-tick.C:
		}
	}
}

// unsetIfEqual deletes a key only if it still holds a value.
//
//	KEYS[1] key   ARGV[1] expected value
//
// Returns 1 if deleted, 0 if the key held something else (a new leader).
var unsetIfEqual = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// refresh keeps the materialized views fresh while this process leads. It
// subscribes to the events channel: a promotion or a producer's end marks
// the views stale, and they are refreshed at most once per RefreshInterval.
// Before refreshing it compares the promotions counter with the value at
// the last refresh, so nothing is refreshed when nothing changed; the
// fallback tick makes the same check in case a notice was lost.
func (s *Service) refresh(ctx context.Context) {
	sub := s.rdb.Subscribe(ctx, s.pipe.Config().Keys.Events())
	defer sub.Close()
	msgs := sub.Channel()
	fallback := time.NewTicker(s.cfg.RefreshFallback)
	defer fallback.Stop()
	var due *time.Timer
	var dueC <-chan time.Time
	defer func() {
		if due != nil {
			due.Stop()
		}
	}()
	seen := int64(-1) // so the new leader refreshes once, whatever it missed
	var last time.Time
	stale := true
	for {
		if stale && dueC == nil {
			wait := time.Until(last.Add(s.cfg.RefreshInterval))
			due = time.NewTimer(max(wait, 0))
			dueC = due.C
		}
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if m.Payload == pipeline.EventPromoted || strings.HasPrefix(m.Payload, "done:") {
				stale = true
			}
		case <-fallback.C:
			stale = true
		case <-dueC:
			dueC = nil
			stale = false
			last = time.Now()
			seen = s.refreshIfChanged(ctx, seen)
		}
	}
}

// refreshIfChanged refreshes the views if the promotions counter moved
// since seen, and returns the value it refreshed at. The counter is read
// before the refresh, so promotions committed during it are not missed.
func (s *Service) refreshIfChanged(ctx context.Context, seen int64) int64 {
	n, err := s.pipe.Windows().Promotions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cannot read the promotions counter; refreshing anyway", "err", err)
		}
		n = -1
	} else if n == seen {
		return seen
	}
	start := time.Now()
	if err := s.pipe.RefreshViews(ctx); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("view refresh failed; retrying at the next notice or tick", "err", err)
		}
		return seen
	}
	s.refreshes.Add(1)
	s.log.Debug("refreshed views", "took", time.Since(start).Round(time.Millisecond), "promotions", n)
	return n
}

// lookupTables maps a lookup table to its snapshot table and the dead
// letter reason a change to it may cure.
var lookupTables = map[string]struct{ snapshot, reason string }{
	"product_catalog": {lookup.Products, order.ReasonUnknownProduct},
	"currency_rates":  {lookup.Currencies, order.ReasonUnknownCurrency},
	"zip_code_zones":  {lookup.Zipcodes, order.ReasonUnknownZip},
}

// watchLookups LISTENs for changes to the lookup tables on conn and
// republishes the snapshot when one comes, so workers pick it up at their
// next batch. It republishes once at the start too: changes made while no
// process led were announced to nobody. It returns when ctx ends or conn
// breaks.
func (s *Service) watchLookups(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, "LISTEN "+lookupChannel); err != nil {
		return fmt.Errorf("listen for lookup changes: %w", err)
	}
	s.republish(ctx, lookup.AllTables, "a new leader took over")
	schemaName := s.pipe.Config().Tables.Schema
	for {
		changed, err := s.waitLookupChange(ctx, conn, schemaName)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if len(changed) == 0 {
			continue
		}
		var tables []string
		var names []string
		for name := range changed {
			tables = append(tables, lookupTables[name].snapshot)
			names = append(names, name)
		}
		s.republish(ctx, tables, "changed: "+strings.Join(names, ", "))
		s.suggestReplay(ctx, names)
	}
}

// waitLookupChange waits for notices on conn and returns the lookup tables
// of schemaName they name, gathering notices for LookupSettle after the
// first. Every few polls without a notice it checks that the session is
// alive, since a silent network can leave a wait hanging while another
// process leads.
func (s *Service) waitLookupChange(ctx context.Context, conn *pgx.Conn, schemaName string) (map[string]bool, error) {
	changed := map[string]bool{}
	wait := 5 * s.cfg.LeaderPoll
	for {
		wctx, cancel := context.WithTimeout(ctx, wait)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !pgTimeout(err) {
				return nil, fmt.Errorf("wait for lookup changes: %w", err)
			}
			if len(changed) > 0 {
				return changed, nil
			}
			if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
				return nil, fmt.Errorf("leader session: %w", err)
			}
			continue
		}
		sch, table, ok := strings.Cut(n.Payload, ".")
		if ok && sch == schemaName {
			if _, known := lookupTables[table]; known {
				changed[table] = true
				wait = s.cfg.LookupSettle
			}
		}
	}
}

// pgTimeout reports whether err is a timeout of the connection's own
// deadline, which pgx returns when a wait's context expires.
func pgTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// republish publishes a new lookup snapshot of tables and announces its
// version on the events channel; workers load it at their next batch.
func (s *Service) republish(ctx context.Context, tables []string, why string) {
	v, err := s.pipe.InitCache(ctx, tables...)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cannot republish the lookup snapshot; workers keep the current one", "err", err, "why", why)
		}
		return
	}
	_ = s.pipe.Announce(ctx, pipeline.EventLookupsPrefix+strconv.FormatInt(v, 10))
	s.log.Info("republished the lookup snapshot", "version", v, "tables", strings.Join(tables, ","), "why", why)
}

// suggestReplay logs how many dead letters a change to tables may now
// admit, with the command that replays them: a product added to the
// catalogue makes its rejected orders valid, but replaying them stays the
// operator's decision.
func (s *Service) suggestReplay(ctx context.Context, tables []string) {
	counts, err := dlq.CountByReason(ctx, s.pg, s.pipe.Config().Tables)
	if err != nil {
		return
	}
	for _, t := range tables {
		reason := lookupTables[t].reason
		if n := counts[reason]; n > 0 {
			s.log.Warn(fmt.Sprintf("%s changed: %d dead letters rejected as %s may now be valid; run `redpg dlq replay --reason %s` to retry them",
				t, n, reason, reason))
		}
	}
}
