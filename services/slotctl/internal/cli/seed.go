package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slotwatch/slotwatch/services/slotctl/internal/seed"
)

// seedJSON is `slotctl seed -o json`.
type seedJSON struct {
	Accounts          int           `json:"accounts"`
	AccountsCreated   int           `json:"accounts_created"`
	Applicants        int           `json:"applicants"`
	ApplicantsCreated int           `json:"applicants_created"`
	RequestsCreated   int           `json:"requests_created"`
	Requests          []seedRequest `json:"requests"`
	// Target is the request whose window holds Slot.
	Target string   `json:"target"`
	Slot   seedSlot `json:"slot"`
	// SlotFreed: this run made Slot free on portalsim (--free-slot).
	SlotFreed bool `json:"slot_freed"`
}

type seedRequest struct {
	ID           string `json:"id"`
	Applicant    string `json:"applicant"`
	MissionCode  string `json:"mission_code"`
	Centre       string `json:"centre"`
	VisaCategory string `json:"visa_category"`
	EarliestDate string `json:"earliest_date"`
	LatestDate   string `json:"latest_date"`
}

type seedSlot struct {
	MissionCode  string `json:"mission_code"`
	Centre       string `json:"centre"`
	VisaCategory string `json:"visa_category"`
	Date         string `json:"date"`
	Time         string `json:"time"`
}

func (a *app) seedCommand() *cobra.Command {
	var portalURL string
	var freeSlot bool
	cmd := &cobra.Command{
		Use:   "seed [--portalsim URL [--free-slot]]",
		Short: "Load the demo's dataset: 6 portal accounts, missions fra and bel, 4 applicants with a request each",
		Long: `Load the dataset make run's demo uses, dated from today, through the services'
RPCs: six portal accounts into AccountPool (acc1..acc6@demo.test), and four
applicants into Requests, each with a request for mission fra (France) or
bel (Belgium). One of them, Amélie Laurent's, wants a slot in France three
weeks ahead (London, tourism, 09:30): free that slot on the portal and the
Checker finds it.

Only what is missing is added: an account the pool has, an applicant with
the same email, and a request of theirs with the same wish and window (not
cancelled) are kept, so running it again the same day changes nothing.

With --portalsim (portalsim's address, http://HOST:PORT), portalsim gets the
dataset's accounts and missions too (its whole state is replaced, no slots);
--free-slot then makes the slot free there at once. --timeout bounds the
whole load.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var portal *seed.Portal
			switch {
			case portalURL != "":
				u, err := url.Parse(portalURL)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
					return usagef("--portalsim %q: want portalsim's address, http://HOST:PORT", portalURL)
				}
				portal = &seed.Portal{BaseURL: u.Scheme + "://" + u.Host, HTTP: &http.Client{Timeout: a.timeout}}
			case freeSlot:
				return usagef("--free-slot needs --portalsim")
			}
			ap, err := a.accountPool()
			if err != nil {
				return err
			}
			rq, err := a.requests()
			if err != nil {
				return err
			}
			a.lastTarget = "AccountPool at " + a.accountpoolAddr + " or Requests at " + a.requestsAddr
			ds := seed.DemoDataset(time.Now())
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			loaded, err := seed.Load(ctx, ds, portal, ap, rq)
			if err != nil {
				return err
			}
			if freeSlot {
				if err := portal.AddSlot(ctx, ds.Slot); err != nil {
					return err
				}
			}
			return a.printSeed(ds, loaded, freeSlot)
		},
	}
	cmd.Flags().StringVar(&portalURL, "portalsim", "", "portalsim's address (http://HOST:PORT): give it the dataset's accounts and missions too")
	cmd.Flags().BoolVar(&freeSlot, "free-slot", false, "with --portalsim: make the dataset's slot free on portalsim now")
	return cmd
}

func (a *app) printSeed(ds seed.Dataset, loaded seed.Loaded, freed bool) error {
	out := seedJSON{
		Accounts: len(ds.Accounts), AccountsCreated: loaded.AccountsCreated,
		Applicants: len(ds.Applicants), ApplicantsCreated: loaded.ApplicantsCreated,
		RequestsCreated: loaded.RequestsCreated, Requests: []seedRequest{},
		Target: loaded.Target, SlotFreed: freed,
		Slot: seedSlot{MissionCode: ds.Slot.Mission, Centre: ds.Slot.Centre, VisaCategory: ds.Slot.VisaCategory, Date: ds.Slot.Date, Time: ds.Slot.Time},
	}
	// The requests in the dataset's order.
	for _, ap := range ds.Applicants {
		for _, r := range ap.Requests {
			for id, l := range loaded.Requests {
				if l.Applicant == ap.FullName && l.Request == r {
					out.Requests = append(out.Requests, seedRequest{ID: id, Applicant: ap.FullName, MissionCode: r.Mission,
						Centre: r.Centre, VisaCategory: r.VisaCategory, EarliestDate: r.Earliest, LatestDate: r.Latest})
				}
			}
		}
	}
	if a.json() {
		return printJSONValue(a.io.Stdout, out)
	}
	w := a.io.Stdout
	fmt.Fprintf(w, "accounts:   %d in the pool (%d new)\n", out.Accounts, out.AccountsCreated)
	fmt.Fprintf(w, "applicants: %d (%d new), requests: %d (%d new)\n\n", out.Applicants, out.ApplicantsCreated, len(out.Requests), out.RequestsCreated)
	t := newTable(w, "REQUEST", "APPLICANT", "MISSION", "CENTRE", "CATEGORY", "WINDOW")
	for _, r := range out.Requests {
		t.row(r.ID, r.Applicant, r.MissionCode, r.Centre, r.VisaCategory, r.EarliestDate+" .. "+r.LatestDate)
	}
	if err := t.flush(); err != nil {
		return err
	}
	s := out.Slot
	where := "free it on the portal and the Checker finds it"
	if freed {
		where = "free on portalsim now"
	}
	fmt.Fprintf(w, "\nslot: %s %s %s %s %s, for request %s (%s): %s\n", s.MissionCode, s.Centre, s.VisaCategory, s.Date, s.Time,
		out.Target, loaded.Requests[out.Target].Applicant, where)
	return nil
}
