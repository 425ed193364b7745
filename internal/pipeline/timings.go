package pipeline

import (
	"sync/atomic"
	"time"
)

// StageTimes collects how long workers spend in each step of a batch, for
// `redpg benchmark` and profiling. Durations are summed over all workers, so
// rows divided by a duration is what one worker does per second of that
// step. Every method is safe for concurrent use and does nothing on a nil
// *StageTimes: a pipeline configured without one pays one nil check per
// step.
type StageTimes struct {
	// OnDurable, if set, is called by the worker right after a batch's
	// transaction committed, with the order ids it promoted (which the
	// callee must not keep or modify) and the commit time. It runs on the
	// worker's goroutine, so it must be quick. Set it before Run.
	OnDurable func(promoted []string, at time.Time)

	// Observer, if set, is told of every claim, step and committed batch,
	// for metrics (see Observer). Set it before Run.
	Observer Observer

	batches  atomic.Int64
	received atomic.Int64
	staged   atomic.Int64
	promoted atomic.Int64

	sums [numSteps]atomic.Int64 // nanoseconds per step
}

// step names one timed part of a batch.
type step int

const (
	stepClaim step = iota
	stepPrepare
	stepStage
	stepPromote
	stepCommit
	stepAck
	numSteps
)

// StageTotals is a reading of a StageTimes.
type StageTotals struct {
	Batches  int64 // batches committed by workers
	Received int64 // messages in those batches
	Staged   int64 // rows copied into staging
	Promoted int64 // rows inserted into orders

	Claim   time.Duration // taking batches from Redis (non-empty claims only)
	Prepare time.Duration // decode, de-dup, enrich, transform
	Stage   time.Duration // COPY into staging
	Promote time.Duration // the promotion statement and dead letters
	Commit  time.Duration // BEGIN, ledger row and COMMIT
	Ack     time.Duration // acknowledging in Redis and marking the window
}

// Totals returns the sums so far. A nil *StageTimes reads as zero.
func (s *StageTimes) Totals() StageTotals {
	if s == nil {
		return StageTotals{}
	}
	return StageTotals{
		Batches: s.batches.Load(), Received: s.received.Load(), Staged: s.staged.Load(), Promoted: s.promoted.Load(),
		Claim: s.sum(stepClaim), Prepare: s.sum(stepPrepare), Stage: s.sum(stepStage),
		Promote: s.sum(stepPromote), Commit: s.sum(stepCommit), Ack: s.sum(stepAck),
	}
}

// Reset zeroes every sum (OnDurable is kept).
func (s *StageTimes) Reset() {
	if s == nil {
		return
	}
	for _, v := range []*atomic.Int64{&s.batches, &s.received, &s.staged, &s.promoted} {
		v.Store(0)
	}
	for i := range s.sums {
		s.sums[i].Store(0)
	}
}

// now reads the clock only when timings are collected.
func (s *StageTimes) now() time.Time {
	if s == nil {
		return time.Time{}
	}
	return time.Now()
}

func (s *StageTimes) sum(st step) time.Duration { return time.Duration(s.sums[st].Load()) }

// add adds the time since start to one step's sum.
func (s *StageTimes) add(st step, start time.Time) {
	if s == nil {
		return
	}
	s.addDur(st, time.Since(start))
}

// addDur adds d to one step's sum and tells the Observer.
func (s *StageTimes) addDur(st step, d time.Duration) {
	if s == nil {
		return
	}
	s.sums[st].Add(int64(d))
	if s.Observer != nil {
		s.Observer.Step(stepNames[st], d)
	}
}

// claim records a non-empty claim of n messages that began at start.
func (s *StageTimes) claim(start time.Time, n int) {
	if s == nil {
		return
	}
	s.add(stepClaim, start)
	if s.Observer != nil {
		s.Observer.Claimed(n)
	}
}

// durable records a committed batch and tells OnDurable and the Observer.
func (s *StageTimes) durable(pr *prepared, out outcome) {
	if s == nil {
		return
	}
	s.batches.Add(1)
	s.received.Add(out.counts.Received)
	s.staged.Add(int64(len(pr.rows)))
	s.promoted.Add(int64(len(out.promoted)))
	now := time.Now()
	if s.OnDurable != nil {
		s.OnDurable(out.promoted, now)
	}
	if s.Observer != nil {
		s.Observer.Durable(DurableBatch{Counts: out.counts, RejectedBy: out.rejectedBy, At: now,
			OrderTimes: func(yield func(time.Time) bool) {
				for i := range pr.rows {
					if !yield(pr.rows[i].Order.OrderTimestamp) {
						return
					}
				}
			}})
	}
}
