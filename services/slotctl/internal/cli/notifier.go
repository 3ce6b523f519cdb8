package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	ntv1 "github.com/slotwatch/slotwatch/gen/slotwatch/notifier/v1"
)

func (a *app) notifier() (ntv1.NotifierServiceClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastTarget = "Notifier at " + a.notifierAddr
	if a.nt == nil {
		conn, err := a.dial(a.notifierAddr)
		if err != nil {
			return nil, err
		}
		a.nt = ntv1.NewNotifierServiceClient(conn)
	}
	return a.nt, nil
}

// onNotifier is onService for the Notifier.
func (a *app) onNotifier(f func(ctx context.Context, nt ntv1.NotifierServiceClient, args []string) error) func(*cobra.Command, []string) error {
	return onService(a, a.notifier, f)
}

func (a *app) contactsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "contacts", Short: "How the Notifier reaches applicants (email, Telegram, webhook)"}
	var applicant string
	var limit int
	list := &cobra.Command{
		Use:   "list [--applicant ID]",
		Short: "List contacts, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nt, err := a.notifier()
			if err != nil {
				return err
			}
			cs, err := collect(limit, func(token string, size int32) ([]*ntv1.Contact, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				resp, err := nt.ListContacts(ctx, &ntv1.ListContactsRequest{ApplicantId: applicant, PageSize: size, PageToken: token})
				return resp.GetContacts(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			return a.printContacts(cs...)
		},
	}
	list.Flags().StringVar(&applicant, "applicant", "", "only this applicant's")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	get := &cobra.Command{
		Use: "get ID", Short: "Show one contact", Args: cobra.ExactArgs(1),
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, args []string) error {
			resp, err := nt.GetContact(ctx, &ntv1.GetContactRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return a.printContacts(resp.GetContact())
		}),
	}

	var in ntv1.CreateContactRequest
	var kind string
	var withSecret bool
	add := &cobra.Command{
		Use:   "add --applicant ID --kind email|telegram|webhook --address A [--language en|fr] [--read-secret]",
		Short: "Add a contact of an applicant",
		Args:  cobra.NoArgs,
		// The secret is read before the call's --timeout starts.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			k, err := parseEnum("kind", kind, "CONTACT_KIND_", ntv1.ContactKind_value)
			if err != nil {
				return err
			}
			in.Kind = ntv1.ContactKind(k)
			if withSecret {
				in.WebhookSecret, err = a.readSecret(cmd.Context(), "webhook secret", "Webhook secret: ")
			}
			return err
		},
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, _ []string) error {
			resp, err := nt.CreateContact(ctx, &in)
			if err != nil {
				return err
			}
			return a.printContacts(resp.GetContact())
		}),
	}
	add.Flags().StringVar(&in.ApplicantId, "applicant", "", "applicant id (Requests)")
	add.Flags().StringVar(&kind, "kind", "", "email, telegram or webhook")
	add.Flags().StringVar(&in.Address, "address", "", "email address, Telegram chat id, or https URL")
	add.Flags().StringVar(&in.Language, "language", "", "en or fr (en)")
	add.Flags().BoolVar(&withSecret, "read-secret", false, "read the webhook's signing secret (prompted for, or stdin's first line)")

	var (
		upAddress, upLanguage, upSecret string
		newSecret, endRotation          bool
	)
	update := &cobra.Command{
		Use:   "update ID [--address A] [--language L] [--read-secret] [--end-rotation]",
		Short: "Change a contact; a new secret starts a rotation (both sign until --end-rotation)",
		Args:  cobra.ExactArgs(1),
		// The secret is read before the call's --timeout starts.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if !newSecret {
				return nil
			}
			var err error
			upSecret, err = a.readSecret(cmd.Context(), "webhook secret", "New webhook secret: ")
			return err
		},
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, args []string) error {
			req := &ntv1.UpdateContactRequest{Id: args[0], EndWebhookSecretRotation: endRotation}
			if upAddress != "" {
				req.Address = &upAddress
			}
			if upLanguage != "" {
				req.Language = &upLanguage
			}
			if newSecret {
				req.WebhookSecret = &upSecret
			}
			resp, err := nt.UpdateContact(ctx, req)
			if err != nil {
				return err
			}
			return a.printContacts(resp.GetContact())
		}),
	}
	update.Flags().StringVar(&upAddress, "address", "", "new address")
	update.Flags().StringVar(&upLanguage, "language", "", "new language")
	update.Flags().BoolVar(&newSecret, "read-secret", false, "read a new webhook secret (prompted for, or stdin's first line)")
	update.Flags().BoolVar(&endRotation, "end-rotation", false, "forget the previous webhook secret")

	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a contact (its pending deliveries die)", Args: cobra.ExactArgs(1),
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, args []string) error {
			if _, err := nt.DeleteContact(ctx, &ntv1.DeleteContactRequest{Id: args[0]}); err != nil {
				return err
			}
			return a.printDone("deleted contact " + args[0])
		}),
	}
	cmd.AddCommand(list, get, add, update, del)
	return cmd
}

func (a *app) printDone(msg string) error {
	if a.json() {
		return printJSONValue(a.io.Stdout, map[string]string{"result": msg})
	}
	_, err := a.io.Stdout.Write([]byte(msg + "\n"))
	return err
}

func (a *app) printContacts(cs ...*ntv1.Contact) error {
	if a.json() {
		if len(cs) == 1 {
			return printJSON(a.io.Stdout, cs[0])
		}
		return printJSONList(a.io.Stdout, cs)
	}
	t := newTable(a.io.Stdout, "ID", "APPLICANT", "KIND", "ADDRESS", "LANGUAGE", "SECRET", "CREATED")
	for _, c := range cs {
		t.row(c.GetId(), c.GetApplicantId(), enumWord(c.GetKind().String(), "CONTACT_KIND_"), c.GetAddress(), c.GetLanguage(),
			secretState(c.GetWebhookSecretSet(), c.GetWebhookSecretRotating()), when(c.GetCreatedAt()))
	}
	return t.flush()
}

func secretState(set, rotating bool) string {
	switch {
	case rotating:
		return "rotating"
	case set:
		return "set"
	}
	return "-"
}

func (a *app) subscriptionsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "subscriptions", Short: "Operators' subscriptions to the Notifier's messages, by mission"}
	var mission string
	var limit int
	list := &cobra.Command{
		Use:   "list [--mission M]",
		Short: "List subscriptions, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nt, err := a.notifier()
			if err != nil {
				return err
			}
			subs, err := collect(limit, func(token string, size int32) ([]*ntv1.Subscription, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				resp, err := nt.ListSubscriptions(ctx, &ntv1.ListSubscriptionsRequest{MissionCode: mission, PageSize: size, PageToken: token})
				return resp.GetSubscriptions(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			return a.printSubscriptions(subs...)
		},
	}
	list.Flags().StringVar(&mission, "mission", "", "only those hearing of this mission")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (0: all)")

	var (
		in           ntv1.CreateSubscriptionRequest
		kind, events string
		subSecret    bool
	)
	add := &cobra.Command{
		Use:   "add --missions fra,bel --kind email|telegram|webhook --address A [--events slot_found,expired,cancelled] [--language L] [--read-secret]",
		Short: "Subscribe an address to every slot found (and, if asked, expiry and cancellation) on missions",
		Args:  cobra.NoArgs,
		// The secret is read before the call's --timeout starts.
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			k, err := parseEnum("kind", kind, "CONTACT_KIND_", ntv1.ContactKind_value)
			if err != nil {
				return err
			}
			in.Kind = ntv1.ContactKind(k)
			for _, e := range strings.Split(events, ",") {
				if strings.TrimSpace(e) == "" {
					continue
				}
				v, err := parseEnum("events", e, "EVENT_TYPE_", ntv1.EventType_value)
				if err != nil {
					return err
				}
				in.EventTypes = append(in.EventTypes, ntv1.EventType(v))
			}
			if subSecret {
				in.WebhookSecret, err = a.readSecret(cmd.Context(), "webhook secret", "Webhook secret: ")
			}
			return err
		},
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, _ []string) error {
			resp, err := nt.CreateSubscription(ctx, &in)
			if err != nil {
				return err
			}
			return a.printSubscriptions(resp.GetSubscription())
		}),
	}
	add.Flags().StringSliceVar(&in.MissionCodes, "missions", nil, "mission codes, comma-separated")
	add.Flags().StringVar(&events, "events", "", "slot_found (always) plus expired and/or cancelled, comma-separated")
	add.Flags().StringVar(&kind, "kind", "", "email, telegram or webhook")
	add.Flags().StringVar(&in.Address, "address", "", "email address, Telegram chat id, or https URL")
	add.Flags().StringVar(&in.Language, "language", "", "en or fr (en)")
	add.Flags().BoolVar(&subSecret, "read-secret", false, "read the webhook's signing secret (prompted for, or stdin's first line)")

	get := &cobra.Command{
		Use: "get ID", Short: "Show one subscription", Args: cobra.ExactArgs(1),
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, args []string) error {
			resp, err := nt.GetSubscription(ctx, &ntv1.GetSubscriptionRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return a.printSubscriptions(resp.GetSubscription())
		}),
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a subscription (its pending deliveries die)", Args: cobra.ExactArgs(1),
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, args []string) error {
			if _, err := nt.DeleteSubscription(ctx, &ntv1.DeleteSubscriptionRequest{Id: args[0]}); err != nil {
				return err
			}
			return a.printDone("deleted subscription " + args[0])
		}),
	}
	cmd.AddCommand(list, get, add, del)
	return cmd
}

func (a *app) printSubscriptions(subs ...*ntv1.Subscription) error {
	if a.json() {
		if len(subs) == 1 {
			return printJSON(a.io.Stdout, subs[0])
		}
		return printJSONList(a.io.Stdout, subs)
	}
	t := newTable(a.io.Stdout, "ID", "MISSIONS", "EVENTS", "KIND", "ADDRESS", "LANGUAGE", "SECRET", "CREATED")
	for _, s := range subs {
		var events []string
		for _, e := range s.GetEventTypes() {
			events = append(events, enumWord(e.String(), "EVENT_TYPE_"))
		}
		t.row(s.GetId(), strings.Join(s.GetMissionCodes(), ","), strings.Join(events, ","), enumWord(s.GetKind().String(), "CONTACT_KIND_"),
			s.GetAddress(), s.GetLanguage(), secretState(s.GetWebhookSecretSet(), s.GetWebhookSecretRotating()), when(s.GetCreatedAt()))
	}
	return t.flush()
}

func (a *app) deliveriesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "deliveries", Short: "The Notifier's delivery log: what was sent to whom, and what died"}
	var (
		state, contact, subscription string
		limit                        int
	)
	list := &cobra.Command{
		Use:   "list [--state pending|delivered|dead] [--contact ID] [--subscription ID]",
		Short: "List deliveries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := parseEnum("state", state, "DELIVERY_STATE_", ntv1.DeliveryState_value)
			if err != nil {
				return err
			}
			nt, err := a.notifier()
			if err != nil {
				return err
			}
			ds, err := collect(limit, func(token string, size int32) ([]*ntv1.Delivery, string, error) {
				ctx, cancel := a.call(cmd.Context())
				defer cancel()
				resp, err := nt.ListDeliveries(ctx, &ntv1.ListDeliveriesRequest{State: ntv1.DeliveryState(st), ContactId: contact,
					SubscriptionId: subscription, PageSize: size, PageToken: token})
				return resp.GetDeliveries(), resp.GetNextPageToken(), err
			})
			if err != nil {
				return err
			}
			return a.printDeliveries(ds...)
		},
	}
	list.Flags().StringVar(&state, "state", "", "only deliveries in this state")
	list.Flags().StringVar(&contact, "contact", "", "only those to this contact")
	list.Flags().StringVar(&subscription, "subscription", "", "only those to this subscription")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many (0: all)")

	retry := &cobra.Command{
		Use: "retry ID", Short: "Queue a DEAD delivery again", Args: cobra.ExactArgs(1),
		RunE: a.onNotifier(func(ctx context.Context, nt ntv1.NotifierServiceClient, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usagef("delivery id %q: want a number", args[0])
			}
			resp, err := nt.RetryDelivery(ctx, &ntv1.RetryDeliveryRequest{Id: id})
			if err != nil {
				return err
			}
			return a.printDeliveries(resp.GetDelivery())
		}),
	}
	cmd.AddCommand(list, retry)
	return cmd
}

func (a *app) printDeliveries(ds ...*ntv1.Delivery) error {
	if a.json() {
		if len(ds) == 1 {
			return printJSON(a.io.Stdout, ds[0])
		}
		return printJSONList(a.io.Stdout, ds)
	}
	t := newTable(a.io.Stdout, "ID", "EVENT", "TYPE", "REQUEST", "KIND", "ADDRESS", "STATE", "ATTEMPTS", "DELIVERED", "LAST ERROR")
	for _, d := range ds {
		t.row(d.GetId(), d.GetEventCursor(), enumWord(d.GetEventType().String(), "EVENT_TYPE_"), d.GetRequestId(),
			enumWord(d.GetKind().String(), "CONTACT_KIND_"), d.GetAddress(), enumWord(d.GetState().String(), "DELIVERY_STATE_"),
			d.GetAttempts(), when(d.GetDeliveredAt()), d.GetLastError())
	}
	return t.flush()
}
