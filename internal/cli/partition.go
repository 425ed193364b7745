package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/partition"
)

func (a *app) partitionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "partition",
		Short: "Partition orders by month of order_timestamp (one transaction)",
		Long: `Replaces an unpartitioned orders table with one partitioned by month of
order_timestamp (declarative RANGE partitioning), in ONE transaction that holds
an exclusive lock on orders: stop workers first, and expect it to take about as
long as copying the table and building its indexes once.

The new table is built from the live one (columns, checks, foreign keys,
indexes; views and materialized views over it are recreated and refreshed).
Its primary key becomes (order_id, order_timestamp); the registry table
order_ids keeps every order id unique across partitions, and workers write it
in the same transaction as orders. Partitions cover the oldest order's month
through 3 months ahead, plus a default partition; running workers create
later months ahead by themselves. Running it again on a partitioned table
only creates missing months.`,
		Example: `  redpg partition
  redpg partition --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := a.pipe.RequireNoLiveWorkers(ctx, "converting orders"); err != nil {
				return err
			}
			t := a.pipe.Config().Tables
			rep, err := partition.Convert(ctx, a.pg, t, time.Now(), partition.DefaultAhead)
			if err != nil {
				return fmt.Errorf("partition orders: %w", err)
			}
			t.Partitioned = true
			created, err := partition.Ensure(ctx, a.pg, t, time.Now(), partition.DefaultAhead)
			if err != nil {
				return err
			}
			rep.Partitions += len(created)
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(rep)
			}
			if rep.AlreadyPartitioned {
				fmt.Fprintf(a.stdout, "orders is already partitioned; created %d missing monthly partitions\n", len(created))
			} else {
				fmt.Fprintf(a.stdout, "orders partitioned by month in %s: %d rows copied, %d monthly partitions, indexes %v, views %v\n",
					rep.Elapsed.Round(time.Millisecond), rep.Rows, rep.Partitions, rep.Indexes, rep.Views)
			}
			parts, err := partition.List(ctx, a.pg, t)
			if err != nil {
				return err
			}
			if len(parts) > 0 {
				fmt.Fprintf(a.stdout, "partitions: %s … %s (%d), plus %s\n", parts[0].Name, parts[len(parts)-1].Name, len(parts), partition.DefaultPartition)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func (a *app) retentionCommand() *cobra.Command {
	var keep string
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "retention --keep 13mo",
		Short: "Drop whole monthly partitions of orders older than --keep",
		Long: `Drops every monthly partition of a partitioned orders table (redpg partition)
whose whole month ended more than --keep ago: no row younger than --keep is
dropped. Each partition goes in its own transaction, with its order ids removed
from the order_ids registry and its row count recorded in orders_retired, so
redpg reconcile still balances. The default partition is never dropped.

De-dup consequence: once its partition is gone, an order id is forgotten. A
re-send of a retired order (older than --keep, and outside the Redis window) is
stored again as a new order. Materialized views keep the retired months until
the next refresh (redpg promote).`,
		Example: `  redpg retention --keep 13mo --dry-run
  redpg retention --keep 13mo
  redpg retention --keep 2y`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			months, days, err := partition.ParseKeep(keep)
			if err != nil {
				return usageError{err}
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			cutoff := partition.Cutoff(time.Now(), months, days)
			dropped, err := partition.Retire(cmd.Context(), a.pg, a.pipe.Config().Tables, cutoff, dryRun)
			if asJSON && err == nil {
				return json.NewEncoder(a.stdout).Encode(dropped)
			}
			verb := "dropped"
			if dryRun {
				verb = "would drop"
			}
			for _, d := range dropped {
				fmt.Fprintf(a.stdout, "%s %s (%s to %s, %d rows)\n", verb, d.Name, d.From.Format("2006-01-02"), d.To.Format("2006-01-02"), d.Rows)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d partitions ending before %s %s\n", len(dropped), cutoff.Format(time.RFC3339), verb)
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "how much history to keep: 13mo, 400d, 2y (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be dropped, drop nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("keep")
	return cmd
}
