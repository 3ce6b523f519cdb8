package cli

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
)

func (a *app) poolCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "pool", Short: "The account pool as a whole"}
	var watch bool
	var every time.Duration
	status := &cobra.Command{
		Use:   "status [--watch]",
		Short: "Accounts by state and when the next one frees; --watch redraws every second",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			if !watch {
				return a.printPoolStatus(cmd.Context(), ap, 0)
			}
			if every <= 0 {
				return usagef("--interval must be positive")
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				if err := a.printPoolStatus(cmd.Context(), ap, every); err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				select {
				case <-cmd.Context().Done():
					return nil // Ctrl-C ends a watch; that is success
				case <-t.C:
				}
			}
		},
	}
	status.Flags().BoolVarP(&watch, "watch", "w", false, "redraw until interrupted")
	status.Flags().DurationVar(&every, "interval", time.Second, "redraw interval of --watch")
	cmd.AddCommand(status)
	return cmd
}

// printPoolStatus prints one status; every > 0 means a --watch refresh.
func (a *app) printPoolStatus(ctx context.Context, ap apv1.AccountPoolServiceClient, every time.Duration) error {
	watching := every > 0
	cctx, cancel := a.call(ctx)
	defer cancel()
	st, err := ap.GetPoolStatus(cctx, &apv1.GetPoolStatusRequest{})
	if err != nil {
		return err
	}
	if a.json() {
		// One JSON document per refresh: JSON Lines when watching.
		if watching {
			b, err := jsonOpts.Marshal(st)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.io.Stdout, "%s\n", b)
			return err
		}
		return printJSON(a.io.Stdout, st)
	}
	var buf bytes.Buffer
	now := time.Now()
	if watching {
		if a.io.IsTerminal(a.io.Stdout) {
			buf.WriteString("\x1b[H\x1b[2J") // home and clear: redraw in place
		}
		fmt.Fprintf(&buf, "%s (every %s, Ctrl-C to stop)\n", now.Format("15:04:05"), every)
	}
	t := newTable(&buf, "TOTAL ACTIVE", "AVAILABLE", "LEASED", "COOLDOWN", "QUARANTINED", "DISABLED", "OVER LOGIN BUDGET", "NEXT AVAILABLE")
	next := until(st.GetNextAvailableAt(), now)
	if st.GetAvailable() > 0 {
		next = "now"
	}
	t.row(st.GetTotalActive(), st.GetAvailable(), st.GetLeased(), st.GetInCooldown(), st.GetQuarantined(), st.GetDisabled(), st.GetOverLoginBudget(), next)
	if err := t.flush(); err != nil {
		return err
	}
	if watching && !a.io.IsTerminal(a.io.Stdout) {
		buf.WriteString("\n")
	}
	_, err = a.io.Stdout.Write(buf.Bytes())
	return err
}
