package demo

import (
	"reflect"
	"testing"
	"time"
)

func TestParseCheckerLine(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 5, 250_000_000, time.UTC)

	for _, tc := range []struct {
		name string
		line string
		want Event
		ok   bool
	}{
		{
			name: "CheckFinished",
			line: `{"time":"2026-03-01T10:00:05.25Z","level":"INFO","msg":"check finished","session":3,"mission":"fra","account_id":3,"account_email":"acc3@demo.test","outcome":"no_slot","slots":0,"matched":0,"duration_ms":1234,"detail":"0 free slots","logged_in":true,"session_reused":false}`,
			want: Event{Kind: CheckFinished, Time: at, Session: "3", Mission: "fra", AccountID: 3, AccountEmail: "acc3@demo.test",
				Outcome: "no_slot", Duration: 1234 * time.Millisecond, Detail: "0 free slots", LoggedIn: true},
			ok: true,
		},
		{
			name: "CheckFinishedWithSlotsAndAStringSession",
			line: `{"msg":"check finished","session":"s-7","mission":"fra","account_id":"2","outcome":"success","slots":2,"matched":1,"duration_ms":987.5,"logged_in":false,"session_reused":true}`,
			want: Event{Kind: CheckFinished, Session: "s-7", Mission: "fra", AccountID: 2, Outcome: "success", Slots: 2, Matched: 1,
				Duration: 987500 * time.Microsecond, SessionReused: true},
			ok: true,
		},
		{
			name: "NoAccountFreeReadsTheGoDuration",
			line: `{"level":"INFO","msg":"no account free","session":5,"mission":"bel","retry_after":"14.2s","retry_after_ms":14200}`,
			want: Event{Kind: NoAccountFree, Session: "5", Mission: "bel", RetryAfter: 14200 * time.Millisecond},
			ok:   true,
		},
		{
			name: "NoAccountFreeFallsBackToMilliseconds",
			line: `{"msg":"no account free","session":5,"mission":"bel","retry_after_ms":900}`,
			want: Event{Kind: NoAccountFree, Session: "5", Mission: "bel", RetryAfter: 900 * time.Millisecond},
			ok:   true,
		},
		{
			name: "SessionStartedWithAList",
			line: `{"msg":"session started","session":1,"missions":["fra","bel"]}`,
			want: Event{Kind: SessionStarted, Session: "1", Missions: []string{"fra", "bel"}},
			ok:   true,
		},
		{
			name: "SessionStartedWithACommaList",
			line: `{"msg":"session started","session":1,"missions":"fra, bel"}`,
			want: Event{Kind: SessionStarted, Session: "1", Missions: []string{"fra", "bel"}},
			ok:   true,
		},
		{
			name: "SessionStartedWithACount",
			line: `{"msg":"session started","session":1,"missions":2}`,
			want: Event{Kind: SessionStarted, Session: "1"},
			ok:   true,
		},
		{
			name: "SessionStartedWithACountAndTheCodes",
			line: `{"msg":"session started","session":1,"missions":2,"mission_codes":["fra","bel"]}`,
			want: Event{Kind: SessionStarted, Session: "1", Missions: []string{"fra", "bel"}},
			ok:   true,
		},
		{
			name: "MissionNotChecked",
			line: `{"level":"INFO","msg":"mission not checked","session":12,"mission":"bel","outcome":"no_account","detail":"checker is stopping","retry_after":"310ms","retry_after_ms":310}`,
			want: Event{Kind: MissionNotChecked, Session: "12", Mission: "bel", Outcome: "no_account", Detail: "checker is stopping"},
			ok:   true,
		},
		{
			name: "SessionFinished",
			line: `{"msg":"session finished","session":4,"checks":2}`,
			want: Event{Kind: SessionFinished, Session: "4", Checks: 2},
			ok:   true,
		},
		{
			name: "AnErrorLineIsAProblem",
			line: `{"level":"ERROR","msg":"browser start","error":"exec: chromium: not found"}`,
			want: Event{Kind: CheckerProblem, Message: "browser start: exec: chromium: not found"},
			ok:   true,
		},
		{
			name: "OtherInfoLinesAreNotShown",
			line: `{"level":"INFO","msg":"checker listening","addr":"127.0.0.1:50053"}`,
		},
		{
			name: "WarningsAreNotShown",
			line: `{"level":"WARN","msg":"renew failed","error":"deadline exceeded"}`,
		},
		{
			name: "NotJSON",
			line: `[1130/101010.123:ERROR:gpu_init.cc(123)] chromium chatter`,
		},
		{
			name: "AJSONValueThatIsNotAnObject",
			line: `"check finished"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseCheckerLine([]byte(tc.line))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
