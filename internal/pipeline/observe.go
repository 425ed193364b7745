package pipeline

import (
	"time"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/promote"
)

// Observer is told what workers do, so that metrics can count it without
// any part importing a metrics library. Set it on StageTimes.Observer
// before Run. Every call runs on a worker's goroutine, once per batch or
// step (never per message), and must return quickly without blocking.
type Observer interface {
	// Claimed reports a non-empty claim of n messages.
	Claimed(n int)
	// Step reports how long one step of one batch took.
	Step(s Step, d time.Duration)
	// Durable reports a batch whose transaction committed.
	Durable(b DurableBatch)
}

// Step names one timed part of a batch, as Observer.Step reports it.
type Step string

// The steps of a batch, in the order a worker runs them.
const (
	StepClaim   Step = "claim"   // taking the batch from Redis
	StepPrepare Step = "prepare" // decode, de-dup, enrich, transform
	StepStage   Step = "stage"   // COPY into staging
	StepPromote Step = "promote" // the promotion statement and dead letters
	StepCommit  Step = "commit"  // BEGIN, ledger row and COMMIT
	StepAck     Step = "ack"     // acknowledging in Redis and marking the window
)

// Steps lists every Step in order.
var Steps = []Step{StepClaim, StepPrepare, StepStage, StepPromote, StepCommit, StepAck}

var stepNames = [numSteps]Step{StepClaim, StepPrepare, StepStage, StepPromote, StepCommit, StepAck}

// DurableBatch describes a committed batch to an Observer. Its slices and
// map belong to the worker: read them during the call, never keep them.
type DurableBatch struct {
	Counts ledger.Counts
	// RejectedBy counts the batch's dead letters by reason code.
	RejectedBy map[string]int64
	// OrderTimes are the order timestamps of the rows that reached
	// PostgreSQL (promoted, or found there already), for end-to-end latency.
	OrderTimes func(yield func(time.Time) bool)
	// At is when the transaction committed.
	At time.Time
}

// rejectedBy merges the reasons of a batch's decode-time dead letters and
// of those promotion rejected.
func rejectedBy(pr *prepared, res map[string]int64) map[string]int64 {
	if len(pr.rejects) == 0 {
		return res
	}
	out := make(map[string]int64, len(res)+1)
	for k, v := range res {
		out[k] = v
	}
	for _, r := range pr.rejects {
		out[r.Reason]++
	}
	return out
}

// mergeReasons adds promotion's reasons to a running tally.
func mergeReasons(dst map[string]int64, res promote.Result) map[string]int64 {
	for k, v := range res.RejectedBy {
		if dst == nil {
			dst = map[string]int64{}
		}
		dst[k] += v
	}
	return dst
}
