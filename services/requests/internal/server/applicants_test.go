package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/pgtest"
	"github.com/slotwatch/slotwatch/services/platform/testkit"
	"github.com/slotwatch/slotwatch/services/requests/migrations"
)

func TestApplicants(t *testing.T) {
	t.Parallel()

	t.Run("PassportNumberShownOnlyByGetApplicant", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		ctx := testkit.Context(t)
		created := createApplicant(t, c)
		if created.GetPassportNumber() != "" {
			t.Fatalf("CreateApplicant returned the passport number")
		}
		got, err := c.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: created.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		a := got.GetApplicant()
		if a.GetPassportNumber() != "X1234567" || a.GetFullName() != "Ada Lovelace" || a.GetNationality() != "GB" || a.GetDateOfBirth() != "1990-12-10" {
			t.Fatalf("GetApplicant = %v", a)
		}
		list, err := c.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetApplicants()) != 1 || list.GetApplicants()[0].GetPassportNumber() != "" {
			t.Fatalf("ListApplicants = %v", list.GetApplicants())
		}
		up, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), Phone: proto.String("+33 1 23 45 67 89")})
		if err != nil {
			t.Fatal(err)
		}
		if up.GetApplicant().GetPassportNumber() != "" {
			t.Fatalf("UpdateApplicant returned the passport number")
		}
	})

	t.Run("PassportNumberIsEncryptedAndBoundToItsRow", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		ctx := testkit.Context(t)
		a := createApplicant(t, c)
		b := createApplicant(t, c)
		var ct []byte
		if err := bundle.pool.QueryRow(ctx, `SELECT passport_ciphertext FROM requests.applicants WHERE id = $1`, a.GetId()).Scan(&ct); err != nil {
			t.Fatal(err)
		}
		if len(ct) == 0 || bytes.Contains(ct, []byte("X1234567")) {
			t.Fatalf("passport stored as %q", ct)
		}
		// A ciphertext copied onto another applicant does not open there.
		if _, err := bundle.pool.Exec(ctx, `UPDATE requests.applicants SET passport_ciphertext = $1 WHERE id = $2`, ct, b.GetId()); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: b.GetId()})
		testkit.WantCode(t, err, codes.Internal)
		if strings.Contains(err.Error(), "X1234567") {
			t.Fatalf("error leaks the passport number: %v", err)
		}
	})

	t.Run("PassportNumberNeverLogged", func(t *testing.T) {
		t.Parallel()
		logs := &testkit.SyncBuffer{}
		pool := pgtest.NewPool(t, migrations.Set)
		srv := startServer(t, pool, serverOpts{now: (testkit.NewClock(start)).Now, logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		c := srv.client
		ctx := testkit.Context(t)
		a := createApplicant(t, c)
		if _, err := c.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: a.GetId()}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), PassportNumber: proto.String("Y7654321")}); err != nil {
			t.Fatal(err)
		}
		_, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), PassportNumber: proto.String("SECRET-99!")})
		wantViolation(t, err, "passport_number")
		if strings.Contains(err.Error(), "SECRET-99!") {
			t.Fatalf("violation echoes the passport number: %v", err)
		}
		srv.stop()
		out := logs.String()
		if !strings.Contains(out, "UpdateApplicant") {
			t.Fatalf("expected request logs, got %q", out)
		}
		for _, secret := range []string{"X1234567", "Y7654321", "SECRET-99!"} {
			if strings.Contains(out, secret) {
				t.Fatalf("logs contain the passport number %s", secret)
			}
		}
	})

	t.Run("UpdateChangesOnlyTheFieldsSet", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		ctx := testkit.Context(t)
		a := createApplicant(t, c)
		bundle.clock.Advance(1e9)
		up, err := c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: a.GetId(), Email: proto.String("ada@example.org"), PassportNumber: proto.String("z9999999")})
		if err != nil {
			t.Fatal(err)
		}
		got := up.GetApplicant()
		if got.GetEmail() != "ada@example.org" || got.GetFullName() != a.GetFullName() || got.GetPhone() != a.GetPhone() {
			t.Fatalf("updated = %v", got)
		}
		if !got.GetUpdatedAt().AsTime().After(a.GetUpdatedAt().AsTime()) {
			t.Fatalf("updated_at did not move")
		}
		full, err := c.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: a.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if full.GetApplicant().GetPassportNumber() != "Z9999999" {
			t.Fatalf("passport = %q", full.GetApplicant().GetPassportNumber())
		}
	})

	t.Run("ListPagesStayStableUnderConcurrentInserts", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		ctx := testkit.Context(t)
		var want []string
		for range 5 {
			want = append(want, createApplicant(t, c).GetId())
			bundle.clock.Advance(1e6)
		}
		var got []string
		token := ""
		for {
			resp, err := c.ListApplicants(ctx, &requestsv1.ListApplicantsRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range resp.GetApplicants() {
				got = append(got, a.GetId())
			}
			// An insert between pages lands after the last page served.
			if token == "" {
				want = append(want, createApplicant(t, c).GetId())
				bundle.clock.Advance(1e6)
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("paged\n%v\nwant\n%v", got, want)
		}
	})

	t.Run("ListByIDsReturnsOnlyThoseAndSkipsUnknownOnes", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		var ids []string
		for range 4 {
			ids = append(ids, createApplicant(t, c).GetId())
			bundle.clock.Advance(1e6)
		}
		unknown := "00000000-0000-4000-8000-000000000000"
		resp, err := c.ListApplicants(testkit.Context(t), &requestsv1.ListApplicantsRequest{Ids: []string{ids[3], unknown, ids[1]}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range resp.GetApplicants() {
			got = append(got, a.GetId())
			if a.GetPassportNumber() != "" {
				t.Errorf("applicant %s listed with its passport number", a.GetId())
			}
		}
		if want := []string{ids[1], ids[3]}; strings.Join(got, ",") != strings.Join(want, ",") || resp.GetNextPageToken() != "" {
			t.Fatalf("ListApplicants(ids) = %v (next %q), want %v", got, resp.GetNextPageToken(), want)
		}
	})

	t.Run("DeleteCancelsPendingRequestsAndKeepsTheirHistory", func(t *testing.T) {
		t.Parallel()
		c, bundle := setup(t)
		ctx := testkit.Context(t)
		a := createApplicant(t, c)
		other := createApplicant(t, c)
		r1 := createRequest(t, c, a.GetId(), reqArgs{})
		r2 := createRequest(t, c, a.GetId(), reqArgs{mission: "bel"})
		keep := createRequest(t, c, other.GetId(), reqArgs{})
		resp, err := c.DeleteApplicant(ctx, &requestsv1.DeleteApplicantRequest{Id: a.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetCancelledRequests() != 2 {
			t.Fatalf("cancelled %d, want 2", resp.GetCancelledRequests())
		}
		_, err = c.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: a.GetId()})
		testkit.WantCode(t, err, codes.NotFound)
		for _, id := range []string{r1.GetId(), r2.GetId()} {
			r, err := c.GetAppointmentRequest(ctx, &requestsv1.GetAppointmentRequestRequest{Id: id})
			if err != nil {
				t.Fatal(err)
			}
			if r.GetRequest().GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_CANCELLED || r.GetRequest().GetApplicantId() != "" {
				t.Fatalf("request after delete = %v", r.GetRequest())
			}
		}
		r, _ := c.GetAppointmentRequest(ctx, &requestsv1.GetAppointmentRequestRequest{Id: keep.GetId()})
		if r.GetRequest().GetStatus() != requestsv1.RequestStatus_REQUEST_STATUS_PENDING {
			t.Fatalf("other applicant's request = %v", r.GetRequest())
		}
		if n := count(t, bundle.pool, `SELECT count(*) FROM requests.events WHERE type = 'cancelled'`); n != 2 {
			t.Fatalf("%d cancelled events, want 2", n)
		}
	})

	t.Run("MissingApplicantIsNotFound", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		ctx := context.Background()
		id := "0190f5a4-0000-7000-8000-000000000000"
		_, err := c.GetApplicant(ctx, &requestsv1.GetApplicantRequest{Id: id})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = c.UpdateApplicant(ctx, &requestsv1.UpdateApplicantRequest{Id: id, FullName: proto.String("x")})
		testkit.WantCode(t, err, codes.NotFound)
		_, err = c.DeleteApplicant(ctx, &requestsv1.DeleteApplicantRequest{Id: id})
		testkit.WantCode(t, err, codes.NotFound)
	})
}
