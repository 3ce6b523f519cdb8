package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/slotwatch/slotwatch/services/checker/internal/profile"
	"github.com/slotwatch/slotwatch/services/checker/profiles"
	"github.com/slotwatch/slotwatch/services/portalsim/sim"
)

// benchFamilies measures the same check on each portalsim family with its
// shipped profile (classic with portalsim's), one at a time with the
// shared browser and a fresh context per check, in one run: the step
// engine's cost per family, next to the classic flow's.
func benchFamilies(ctx context.Context, out io.Writer, portalSim *sim.Sim, baseURL, artifacts, exe string, families []sim.Family, checks int) error {
	var rows []row
	for _, f := range families {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := "portalsim"
		if f != sim.Classic {
			name = string(f)
		}
		data, ok := profiles.Get(name)
		if !ok {
			return fmt.Errorf("family %s: no shipped profile %q", f, name)
		}
		prof, err := profile.Parse(data)
		if err != nil {
			return fmt.Errorf("shipped profile %s: %w", name, err)
		}
		if prof, err = prof.WithBaseURL(baseURL); err != nil {
			return err
		}
		if err := portalSim.SetPortal(f, "UTC"); err != nil {
			return err
		}
		want := 2
		if f == sim.VFS {
			want = 1 // the portal shows the earliest day alone
		}
		b := &bench{sim: portalSim, prof: prof, artifacts: artifacts, exec: exe, wantSlots: want}
		fmt.Fprintf(os.Stderr, "%s: family %s, %d checks, one at a time...\n", exe, f, checks)
		r, err := b.pass(ctx, shared, checks, 1, 0, false)
		if err != nil {
			return fmt.Errorf("family %s: %w", f, err)
		}
		r.family, r.background = f.String(), prof.BackgroundTabs
		rows = append(rows, r)
	}
	if err := portalSim.SetPortal(sim.Classic, "UTC"); err != nil {
		return err
	}
	fmt.Fprintf(out, "Portal families, each with its shipped profile (%s, one at a time):\n\n", shared)
	fmt.Fprintln(out, "| family | checks (failed) | check time median | p90 | checker overhead median | p90 | Chromium CPU per check | bench process CPU per check | CPU per check vs classic | background tabs |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var classic *row
	for i := range rows {
		if rows[i].family == sim.Classic.String() {
			classic = &rows[i]
		}
	}
	for _, r := range rows {
		vs := "n/a"
		if classic != nil && classic.cpu+classic.selfCPU > 0 {
			vs = fmt.Sprintf("%+.0f %%", 100*(float64(r.cpu+r.selfCPU)/float64(classic.cpu+classic.selfCPU)-1))
		}
		fmt.Fprintf(out, "| %s | %d (%d) | %s | %s | %s | %s | %s | %s | %s | %t |\n", r.family, r.checks, r.failed,
			ms(quantile(r.total, 0.5)), ms(quantile(r.total, 0.9)), ms(quantile(r.overhead, 0.5)), ms(quantile(r.overhead, 0.9)),
			ms(r.cpu), ms(r.selfCPU), vs, r.background)
	}
	fmt.Fprintln(out)
	return nil
}
