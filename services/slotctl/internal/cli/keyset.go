package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	apv1 "github.com/slotwatch/slotwatch/gen/slotwatch/accountpool/v1"
	"github.com/slotwatch/slotwatch/services/platform/secrets"
)

func (a *app) keysetCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keyset", Short: "Encryption keysets (ENCRYPTION_KEYSET_FILE) and their rotation"}
	generate := &cobra.Command{
		Use:   "generate",
		Short: "Print a new keyset (JSON) to stdout; works offline",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ks, err := secrets.Generate()
			if err != nil {
				return err
			}
			_, err = a.io.Stdout.Write(ks)
			return err
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate FILE",
		Short: "Print FILE's keyset with a new primary key added; old keys stay",
		Long: `Print FILE's keyset with a new primary key added. The old keys stay, so
stored secrets still decrypt. Then: store it in the Secret, roll the service
out, and run 'slotctl keyset reencrypt' (docs/OPERATIONS.md, "Keyset rotation").`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			in, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read keyset: %w", err)
			}
			out, err := secrets.Rotate(in)
			if err != nil {
				return err
			}
			_, err = a.io.Stdout.Write(out)
			return err
		},
	}
	reencrypt := &cobra.Command{
		Use:   "reencrypt",
		Short: "Re-encrypt every stored password and session state with AccountPool's current primary key",
		Args:  cobra.NoArgs,
		RunE: onService(a, a.accountPool, func(ctx context.Context, ap apv1.AccountPoolServiceClient, _ []string) error {
			resp, err := ap.ReencryptPasswords(ctx, &apv1.ReencryptPasswordsRequest{})
			if err != nil {
				return err
			}
			if a.json() {
				err = printJSON(a.io.Stdout, resp)
			} else {
				_, err = fmt.Fprintf(a.io.Stdout, "re-encrypted %d passwords and %d session states with primary key %d; %d session states that did not decrypt cleared\n",
					resp.GetReencrypted(), resp.GetSessionsReencrypted(), resp.GetPrimaryKeyId(), resp.GetSessionsCleared())
			}
			if bad := resp.GetUndecryptableAccountIds(); err == nil && len(bad) > 0 {
				ids := make([]string, len(bad))
				for i, id := range bad {
					ids[i] = strconv.FormatInt(id, 10)
				}
				return fmt.Errorf("%d accounts do not decrypt with this keyset (ids %s): is it the keyset they were written with? "+
					"If it is, give each a new password with 'slotctl accounts set-password ID'", len(bad), strings.Join(ids, ", "))
			}
			return err
		}),
	}
	cmd.AddCommand(generate, rotate, reencrypt)
	return cmd
}
