-- Exact accounting while work is in motion, and a database identity.
--
-- claim_mark is the value of the Redis account's "claimed" counter right
-- after the batch was claimed (see claimScript in internal/queue). A
-- reconciliation reads the Redis account atomically, then the ledger: the
-- committed batches it must count are exactly those with claim_mark no
-- greater than the "claimed" it read, so a batch committed between the two
-- readings is neither missed nor counted twice. NULL for rows that are not
-- Redis claims (dlq replays) and for batches committed before this
-- migration.
ALTER TABLE pipeline_batches ADD COLUMN claim_mark bigint;

-- One row naming this database. Redis state (counters, in-flight batches)
-- is bound to it, so a Redis that outlived its database, or a deployment
-- pointed at another database, is recognised instead of producing figures
-- that can never balance.
CREATE TABLE pipeline_deployment (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pipeline_deployment DEFAULT VALUES;

-- claim_epoch names the life of the Redis account whose counter claim_mark
-- comes from. An account starts a new epoch when it is created or reset;
-- marks are compared only within the current epoch. pipeline_epochs records
-- every epoch redpg started knowingly; an account whose epoch is missing
-- here, or not acknowledged, was recreated behind redpg's back (Redis lost
-- its data), and reconcile says so instead of balancing what is left.
ALTER TABLE pipeline_batches ADD COLUMN claim_epoch text;

CREATE TABLE pipeline_epochs (
    epoch         text PRIMARY KEY,
    reason        text NOT NULL,
    acknowledged  boolean NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now()
);
