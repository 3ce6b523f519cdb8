package sim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A driver does over HTTP what a browser does on one family's pages, for
// mission fra of baseConfig.
type driver struct {
	// login signs in and returns the login's answer.
	login func(t *testing.T, c *http.Client, base, email, password string) page
	// signedIn says whether a login answer means success.
	signedIn func(p page) bool
	// slotPage and slotAPI, once signed in, ask for a page of the slots
	// area and a request of the slots_api area.
	slotPage, slotAPI func(t *testing.T, c *http.Client, base string) page
	// slots, once signed in, reads London's (or centre's) slots of
	// category the way the family shows them, as "date time" or "date".
	slots func(t *testing.T, c *http.Client, base, centre, category string) []string
	// dashboard, once signed in, asks for the page (or the script's call)
	// of the dashboard area.
	dashboard func(t *testing.T, c *http.Client, base string) page
	// loginStyle and jsonAreas say how the login and the requests of each
	// area answer a misbehaviour: as a page, or as JSON to a script.
	loginStyle answerStyle
	jsonAreas  map[Area]answerStyle
}

var drivers = map[Family]driver{
	Classic: {
		login:     login,
		signedIn:  func(p page) bool { return p.location == "/dashboard" },
		dashboard: func(t *testing.T, c *http.Client, base string) page { return get(t, c, base+"/dashboard") },
		jsonAreas: map[Area]answerStyle{SlotAPI: asJSON},
		slotPage:  func(t *testing.T, c *http.Client, base string) page { return get(t, c, base+"/missions/fra/slots") },
		slotAPI: func(t *testing.T, c *http.Client, base string) page {
			return get(t, c, base+"/api/missions/fra/slots?centre=London&visa_category=tourism")
		},
		slots: func(t *testing.T, c *http.Client, base, centre, category string) []string {
			p := get(t, c, base+"/api/missions/fra/slots?"+url.Values{"centre": {centre}, "visa_category": {category}}.Encode())
			var got slotsResponse
			decodeJSON(t, p, &got)
			out := []string{}
			for _, s := range got.Slots {
				out = append(out, strings.TrimSpace(s.Date+" "+s.Time))
			}
			return out
		},
	},
	TLS: {
		login: func(t *testing.T, c *http.Client, base, email, password string) page {
			token := find(t, get(t, c, base+"/login"), `name="csrf_token" value="([0-9a-f]+)"`)
			return post(t, c, base+"/login", url.Values{"username": {email}, "password": {password}, "csrf_token": {token}})
		},
		signedIn:  func(p page) bool { return p.location == "/groups" },
		dashboard: func(t *testing.T, c *http.Client, base string) page { return get(t, c, base+"/groups") },
		slotPage: func(t *testing.T, c *http.Client, base string) page {
			return get(t, c, base+"/appointment/fra?location=FRALON&visa_type=tourism")
		},
		slotAPI: func(t *testing.T, c *http.Client, base string) page {
			return get(t, c, base+"/appointment/fra?location=FRALON&visa_type=tourism&month=2027-03")
		},
		slots: func(t *testing.T, c *http.Client, base, centre, category string) []string {
			location := find(t, get(t, c, base+"/groups"), `<option value="([A-Z0-9]+)">`+regexp.QuoteMeta(centre)+`</option>`)
			p := get(t, c, base+"/appointment/fra?"+url.Values{"location": {location}, "visa_type": {category}}.Encode())
			out := []string{}
			for range tlsMonths {
				for _, m := range regexp.MustCompile(`class="appt" name="slot" value="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
					out = append(out, m[1])
				}
				next := regexp.MustCompile(`<a href="([^"]+)">Next month`).FindStringSubmatch(p.body)
				if next == nil {
					break
				}
				p = get(t, c, base+html.UnescapeString(next[1]))
			}
			if len(out) == 0 && !strings.Contains(p.body, "there is no available appointment") {
				t.Errorf("no slot and no popup saying so")
			}
			return out
		},
	},
	AIS: {
		login: func(t *testing.T, c *http.Client, base, email, password string) page {
			token := find(t, get(t, c, base+"/fra/niv/users/sign_in"), `<meta name="csrf-token" content="([0-9a-f]+)">`)
			return post(t, c, base+"/fra/niv/users/sign_in", url.Values{"user[email]": {email}, "user[password]": {password},
				"policy_confirmed": {"1"}, "authenticity_token": {token}})
		},
		signedIn: func(p page) bool { return regexp.MustCompile(`^/fra/niv/groups/\d+$`).MatchString(p.location) },
		dashboard: func(t *testing.T, c *http.Client, base string) page {
			return get(t, c, base+"/fra/niv/groups/"+aisGroupID(t, c, base))
		},
		jsonAreas: map[Area]answerStyle{SlotAPI: asJSON},
		slotPage: func(t *testing.T, c *http.Client, base string) page {
			return get(t, c, base+aisSchedulePath(t, c, base, "tourism"))
		},
		slotAPI: func(t *testing.T, c *http.Client, base string) page {
			return aisGet(t, c, base+aisSchedulePath(t, c, base, "tourism")+"/days/101.json?appointments[expedite]=false")
		},
		slots: func(t *testing.T, c *http.Client, base, centre, category string) []string {
			schedule := aisSchedulePath(t, c, base, category)
			facility := find(t, get(t, c, base+schedule), `<option value="(\d+)">`+regexp.QuoteMeta(centre)+`</option>`)
			var days []aisDay
			decodeJSON(t, aisGet(t, c, base+schedule+"/days/"+facility+".json?appointments[expedite]=false"), &days)
			out := []string{}
			for _, d := range days {
				var times aisTimesAnswer
				decodeJSON(t, aisGet(t, c, base+schedule+"/times/"+facility+".json?date="+d.Date+"&appointments[expedite]=false"), &times)
				for _, tm := range times.AvailableTimes {
					out = append(out, d.Date+" "+tm)
				}
				if len(times.AvailableTimes) == 0 {
					out = append(out, d.Date)
				}
			}
			return out
		},
	},
	VFS: {
		login: func(t *testing.T, c *http.Client, base, email, password string) page {
			get(t, c, base+"/fra/login")
			body, _ := json.Marshal(map[string]any{"username": email, "password": password, "consent": true})
			return vfsCall(t, c, base, "POST", "/api/fra/login", string(body))
		},
		signedIn: func(p page) bool { return p.status == http.StatusOK && strings.Contains(p.body, `"ok":true`) },
		slotPage: func(t *testing.T, c *http.Client, base string) page {
			return vfsCall(t, c, base, "GET", "/api/fra/centres", "")
		},
		slotAPI: func(t *testing.T, c *http.Client, base string) page {
			return vfsCall(t, c, base, "GET", "/api/fra/categories?centre=FRALON", "")
		},
		dashboard: func(t *testing.T, c *http.Client, base string) page {
			return vfsCall(t, c, base, "GET", "/api/fra/dashboard", "")
		},
		loginStyle: asJSON,
		jsonAreas:  map[Area]answerStyle{Dashboard: asJSON, SlotPage: asJSON, SlotAPI: asJSON},
		slots: func(t *testing.T, c *http.Client, base, centre, category string) []string {
			var centres, categories, subs []vfsOption
			decodeJSON(t, vfsCall(t, c, base, "GET", "/api/fra/centres", ""), &centres)
			i := slices.IndexFunc(centres, func(o vfsOption) bool { return o.Name == centre })
			if i < 0 {
				t.Fatalf("centres %+v lack %s", centres, centre)
			}
			code := centres[i].Code
			decodeJSON(t, vfsCall(t, c, base, "GET", "/api/fra/categories?centre="+code, ""), &categories)
			j := slices.IndexFunc(categories, func(o vfsOption) bool { return strings.EqualFold(o.Name, category) })
			if j < 0 {
				t.Fatalf("categories %+v lack %s", categories, category)
			}
			decodeJSON(t, vfsCall(t, c, base, "GET", "/api/fra/subcategories?centre="+code+"&category="+categories[j].Code, ""), &subs)
			body, _ := json.Marshal(map[string]string{"centre": code, "category": categories[j].Code, "subcategory": subs[0].Code})
			var ans vfsEarliestAnswer
			decodeJSON(t, vfsCall(t, c, base, "POST", "/api/fra/earliest", string(body)), &ans)
			if ans.EarliestDate == nil {
				if ans.Error == nil || ans.Error.Code != 1035 || len(ans.EarliestSlotLists) != 0 {
					t.Errorf("no date, but not the no-slot answer: %+v", ans)
				}
				return []string{}
			}
			d, err := time.Parse("01/02/2006 15:04:05", *ans.EarliestDate)
			if err != nil {
				t.Fatalf("earliestDate %q: %v", *ans.EarliestDate, err)
			}
			return []string{d.Format(time.DateOnly)}
		},
	},
}

func find(t *testing.T, p page, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no %s in the page (status %d):\n%s", re, p.status, p.body)
	}
	return m[1]
}

func post(t *testing.T, c *http.Client, u string, form url.Values) page {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func decodeJSON(t *testing.T, p page, v any) {
	t.Helper()
	if p.status != http.StatusOK {
		t.Fatalf("status %d: %s", p.status, p.body)
	}
	if err := json.Unmarshal([]byte(p.body), v); err != nil {
		t.Fatalf("%s: %v", p.body, err)
	}
}

// aisSchedulePath follows the group page's Continue link of category.
func aisSchedulePath(t *testing.T, c *http.Client, base, category string) string {
	t.Helper()
	group := get(t, c, base+"/fra/niv/groups/"+aisGroupID(t, c, base))
	if group.status != http.StatusOK { // not signed in: acc1's
		return "/fra/niv/schedule/" + strconv.Itoa(stableID("acc1@example.com", "fra", category)) + "/appointment"
	}
	return find(t, group, `Visa class:</strong> `+regexp.QuoteMeta(category)+`</p>[\s\S]*?href="([^"]+)"`)
}

// aisGroupID is the group of the signed-in account, from the admin API.
func aisGroupID(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			var sessions []Session
			call(t, "GET", base+"/admin/sessions", "", &sessions)
			if len(sessions) > 0 {
				return strconv.Itoa(stableID(sessions[len(sessions)-1].Email))
			}
		}
	}
	return "0"
}

func aisGet(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func vfsCall(t *testing.T, c *http.Client, base, method, path, body string) page {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == xsrfCookie {
			req.Header.Set("X-XSRF-TOKEN", ck.Value)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

// setupFamily starts a portal of family f whose clock says now.
func setupFamily(t *testing.T, f Family, now time.Time) (*http.Client, *testBundle) {
	t.Helper()
	cfg := baseConfig()
	cfg.Family = f
	cfg.Missions[0].Slots = append(cfg.Missions[0].Slots, Slot{Centre: "London", VisaCategory: "tourism", Date: "2027-02-10", Time: "10:00"})
	c, b := setup(t, cfg)
	b.sim.SetClock(func() time.Time { return now })
	return c, b
}

var feb15 = time.Date(2027, 2, 15, 12, 0, 0, 0, time.UTC)

func TestFamilies(t *testing.T) {
	t.Parallel()
	for _, f := range families {
		d := drivers[f]
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()

			t.Run("ShowsTheStoredSlotsButNotThePastOnes", func(t *testing.T) {
				t.Parallel()
				c, b := setupFamily(t, f, feb15)
				if p := d.login(t, c, b.srv.URL, "acc1@example.com", "pw1"); !d.signedIn(p) {
					t.Fatalf("login: %d %q\n%s", p.status, p.location, p.body)
				}
				want := []string{"2027-03-01 09:30", "2027-03-02 14:00"}
				if f == VFS { // the earliest date only
					want = []string{"2027-03-01"}
				}
				if got := d.slots(t, c, b.srv.URL, "London", "tourism"); !slices.Equal(got, want) {
					t.Errorf("London tourism: %q, want %q", got, want)
				}
				if got := d.slots(t, c, b.srv.URL, "London", "business"); len(got) != 0 {
					t.Errorf("London business: %q, want none", got)
				}
				// A slot added through the admin API shows at once.
				call(t, "PUT", b.srv.URL+"/admin/slots", `{"mission":"fra","centre":"London","visa_category":"business","slots":[{"date":"2027-05-04","time":"08:15"}]}`, nil)
				want = []string{"2027-05-04 08:15"}
				if f == VFS {
					want = []string{"2027-05-04"}
				}
				if got := d.slots(t, c, b.srv.URL, "London", "business"); !slices.Equal(got, want) {
					t.Errorf("London business after PUT /admin/slots: %q, want %q", got, want)
				}
			})

			t.Run("TodayIsThePortalsTimezones", func(t *testing.T) {
				t.Parallel()
				// 02:00 UTC on 2 March is still 1 March in New York: the
				// slot of 1 March is offered there, not in a UTC portal.
				c, b := setupFamily(t, f, time.Date(2027, 3, 2, 2, 0, 0, 0, time.UTC))
				d.login(t, c, b.srv.URL, "acc1@example.com", "pw1")
				first := func() string {
					got := d.slots(t, c, b.srv.URL, "London", "tourism")
					if len(got) == 0 {
						return ""
					}
					return got[0][:10]
				}
				if got := first(); got != "2027-03-02" {
					t.Errorf("UTC portal's first slot is on %q, want 2027-03-02", got)
				}
				if err := b.sim.SetPortal(f, "America/New_York"); err != nil {
					t.Fatal(err)
				}
				if got := first(); got != "2027-03-01" {
					t.Errorf("New York portal's first slot is on %q, want 2027-03-01", got)
				}
			})

			t.Run("WrongPasswordIsRefusedAndRecorded", func(t *testing.T) {
				t.Parallel()
				c, b := setupFamily(t, f, feb15)
				if p := d.login(t, c, b.srv.URL, "acc1@example.com", "nope"); d.signedIn(p) || len(b.sim.Sessions()) != 0 {
					t.Errorf("signed in with a wrong password: %d %q", p.status, p.location)
				}
				if l := b.sim.Logins(); len(l) != 1 || l[0].Result != LoginBadPassword {
					t.Errorf("logins = %+v", l)
				}
			})

			t.Run("WithoutASessionTheSlotsAreNotShown", func(t *testing.T) {
				t.Parallel()
				c, b := setupFamily(t, f, feb15)
				for _, p := range []page{d.slotPage(t, c, b.srv.URL), d.slotAPI(t, c, b.srv.URL)} {
					if p.status == http.StatusOK || strings.Contains(p.body, "2027-03") {
						t.Errorf("without a session: %d %s", p.status, p.body)
					}
				}
			})
		})
	}
}

// wantWall is each family's answer to a misbehaviour, as a page or as
// JSON: the status and a text of the page (or of the JSON).
func wantWall(f Family, k Kind, style answerStyle) (int, string) {
	status := map[Kind]int{Blocked: 403, TooManyRequests: 429, Captcha: 200, ServerError: 500, Maintenance: 503, Unknown: 200}[k]
	if k == Captcha && (f == VFS || style == asJSON) {
		status = 403
	}
	switch {
	case k == RejectPassword:
		return map[Family]int{Classic: 200, VFS: 401, TLS: 200, AIS: 200}[f],
			map[Family]string{Classic: "Invalid email or password.", VFS: "invalid_credentials", TLS: "Invalid username or password.", AIS: "Invalid email or password."}[f]
	case k == ServerError:
		return status, "500 Internal Server Error"
	case k == Unknown && style == asJSON:
		return status, "<html><body>Moved</body></html>"
	case f == Classic && style == asJSON:
		return status, map[Kind]string{Blocked: "account_blocked", TooManyRequests: "too_many_requests", Captcha: "captcha_required", Maintenance: "maintenance"}[k]
	case f == Classic:
		return status, map[Kind]string{Blocked: blockedPage.Heading, TooManyRequests: rateLimitedPage.Heading, Captcha: captchaPage.Heading,
			Maintenance: maintenancePage.Heading, Unknown: "Our new look is coming soon"}[k]
	case style == asJSON:
		return status, `"code":"` + familyWalls[f][k].Code + `"`
	}
	return status, ">" + html.EscapeString(familyWalls[f][k].Heading) + "</h"
}

func TestFamilyBehaviours(t *testing.T) {
	t.Parallel()
	walls := []Kind{RejectPassword, Blocked, TooManyRequests, Captcha, ServerError, Maintenance, Unknown}
	for _, f := range families {
		d := drivers[f]
		for _, k := range walls {
			t.Run(f.String()+"/AccountBehaviourAtLogin/"+string(k), func(t *testing.T) {
				t.Parallel()
				c, b := setupFamily(t, f, feb15)
				if err := b.sim.SetBehaviour("acc1@example.com", Behaviour{Kind: k}); err != nil {
					t.Fatal(err)
				}
				rec := &headerRecorder{}
				c.Transport = rec
				p := d.login(t, c, b.srv.URL, "acc1@example.com", "pw1")
				status, text := wantWall(f, k, d.loginStyle)
				if p.status != status || !strings.Contains(p.body, text) {
					t.Errorf("got %d, want %d with %q:\n%s", p.status, status, text, p.body)
				}
				if want := map[Kind]string{TooManyRequests: "600", Maintenance: "1800"}[k]; rec.retryAfter != want {
					t.Errorf("Retry-After %q, want %q", rec.retryAfter, want)
				}
				if d.signedIn(p) || len(b.sim.Sessions()) != 0 {
					t.Errorf("signed in despite %s", k)
				}
				if l := b.sim.Logins(); len(l) != 1 || (k != RejectPassword && l[0].Result != loginResultOf[k]) || (k == RejectPassword && l[0].Result != LoginRejected) {
					t.Errorf("logins = %+v", l)
				}
				// The other account is unaffected.
				if p := d.login(t, newClient(t), b.srv.URL, "acc2@example.com", "pw2"); !d.signedIn(p) {
					t.Errorf("acc2 login: %d %q", p.status, p.location)
				}
			})
		}
		for _, k := range walls[1:] {
			t.Run(f.String()+"/GlobalBehaviourOnTheSlotsAfterLogin/"+string(k), func(t *testing.T) {
				t.Parallel()
				c, b := setupFamily(t, f, feb15)
				if p := d.login(t, c, b.srv.URL, "acc1@example.com", "pw1"); !d.signedIn(p) {
					t.Fatalf("login: %d", p.status)
				}
				for _, area := range []Area{Dashboard, SlotPage, SlotAPI} {
					if err := b.sim.SetBehaviour("", Behaviour{Kind: k, Only: area}); err != nil {
						t.Fatal(err)
					}
					ask := map[Area]func(*testing.T, *http.Client, string) page{Dashboard: d.dashboard, SlotPage: d.slotPage, SlotAPI: d.slotAPI}[area]
					p := ask(t, c, b.srv.URL)
					status, text := wantWall(f, k, cmp.Or(d.jsonAreas[area], asPage))
					if p.status != status || !strings.Contains(p.body, text) {
						t.Errorf("%s: got %d, want %d with %q:\n%s", area, p.status, status, text, p.body)
					}
				}
				if err := b.sim.SetBehaviour("", Behaviour{}); err != nil {
					t.Fatal(err)
				}
				if p := d.slotAPI(t, c, b.srv.URL); p.status != http.StatusOK {
					t.Errorf("the session did not survive %s: %d", k, p.status)
				}
			})
		}
		t.Run(f.String()+"/LoggedOutMidCheck", func(t *testing.T) {
			t.Parallel()
			c, b := setupFamily(t, f, feb15)
			if err := b.sim.SetBehaviour("acc1@example.com", Behaviour{Kind: LoggedOut, Only: SlotAPI}); err != nil {
				t.Fatal(err)
			}
			if p := d.login(t, c, b.srv.URL, "acc1@example.com", "pw1"); !d.signedIn(p) {
				t.Fatalf("logged_out must not affect the login: %d", p.status)
			}
			if p := d.slotPage(t, c, b.srv.URL); p.status != http.StatusOK {
				t.Errorf("slot page before the API: %d", p.status)
			}
			p := d.slotAPI(t, c, b.srv.URL)
			if f == TLS {
				if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
					t.Errorf("tls next month: %d to %q, want a redirect to the login", p.status, p.location)
				}
			} else if p.status != http.StatusUnauthorized {
				t.Errorf("slot API: %d, want 401: %s", p.status, p.body)
			}
			if s := b.sim.Sessions(); len(s) != 0 {
				t.Errorf("sessions after logged_out: %+v", s)
			}
		})
		t.Run(f.String()+"/SlowHoldsTheAnswer", func(t *testing.T) {
			t.Parallel()
			c, b := setupFamily(t, f, feb15)
			d.login(t, c, b.srv.URL, "acc1@example.com", "pw1")
			if err := b.sim.SetBehaviour("acc1@example.com", Behaviour{DelayMS: 60_000, Only: SlotAPI}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			c.Transport = ctxTransport{ctx}
			req, _ := http.NewRequest("GET", b.srv.URL+map[Family]string{Classic: "/api/missions/fra/slots?centre=London&visa_category=tourism",
				TLS: "/appointment/fra?location=FRALON&visa_type=tourism&month=2027-03", AIS: aisSchedulePath(t, c, b.srv.URL, "tourism") + "/days/101.json",
				VFS: "/api/fra/categories?centre=FRALON"}[f], nil)
			req.Header.Set("X-Requested-With", "XMLHttpRequest")
			_, err := c.Do(req)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("a 60s delay answered within 100ms: %v", err)
			}
		})
	}
}

// headerRecorder keeps the Retry-After header of the last answer.
type headerRecorder struct{ retryAfter string }

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		h.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

// ctxTransport sends every request with ctx.
type ctxTransport struct{ ctx context.Context }

func (c ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return http.DefaultTransport.RoundTrip(r.WithContext(c.ctx))
}

func TestPortalAdminAPI(t *testing.T) {
	t.Parallel()

	t.Run("PutPortalSwitchesTheFamilyAndTimezone", func(t *testing.T) {
		t.Parallel()
		c, b := setupFamily(t, Classic, feb15)
		var got portalLook
		if st := call(t, "PUT", b.srv.URL+"/admin/portal", `{"family":"TLS","timezone":"Asia/Kolkata"}`, &got); st != http.StatusOK {
			t.Fatalf("PUT /admin/portal: %d", st)
		}
		if got.Family != "tls" || got.Timezone != "Asia/Kolkata" || got.SessionLifetime == nil || *got.SessionLifetime != "0s" {
			t.Errorf("answer %+v", got)
		}
		if p := get(t, c, b.srv.URL+"/login"); !strings.Contains(p.body, `name="csrf_token"`) {
			t.Errorf("the login page is not the tls one:\n%s", p.body)
		}
		call(t, "PUT", b.srv.URL+"/admin/portal", `{"family":"classic"}`, &got)
		if got.Family != "classic" || got.Timezone != "Asia/Kolkata" || b.sim.State().Family != Classic {
			t.Errorf("back to classic, the timezone kept: %+v", got)
		}
	})

	// A PUT changes the fields it gives and keeps the others, each of
	// them, as a PUT of an account keeps the behaviour it leaves out (and
	// Requests' SetPortal its unset fields): before, a PUT without family
	// or timezone reset them to classic and UTC but kept session_lifetime,
	// so an operator who set only the lifetime lost the portal's family.
	t.Run("PutPortalChangesOnlyTheFieldsItGives", func(t *testing.T) {
		t.Parallel()
		_, b := setupFamily(t, Classic, feb15)
		var got portalLook
		if st := call(t, "PUT", b.srv.URL+"/admin/portal", `{"family":"vfs","timezone":"Europe/Paris","session_lifetime":"1h"}`, &got); st != http.StatusOK {
			t.Fatalf("PUT /admin/portal: %d", st)
		}
		for _, tc := range []struct {
			body                   string
			family, timezone, life string
		}{
			{`{"session_lifetime":"30m"}`, "vfs", "Europe/Paris", "30m0s"},
			{`{"timezone":"Asia/Kolkata"}`, "vfs", "Asia/Kolkata", "30m0s"},
			{`{"family":"tls"}`, "tls", "Asia/Kolkata", "30m0s"},
			{`{}`, "tls", "Asia/Kolkata", "30m0s"},
			{`{"family":"classic","timezone":"UTC","session_lifetime":"0s"}`, "classic", "UTC", "0s"},
		} {
			if st := call(t, "PUT", b.srv.URL+"/admin/portal", tc.body, &got); st != http.StatusOK {
				t.Fatalf("PUT /admin/portal %s: %d", tc.body, st)
			}
			if got.Family != tc.family || got.Timezone != tc.timezone || got.SessionLifetime == nil || *got.SessionLifetime != tc.life {
				t.Errorf("PUT %s: %+v (lifetime %v), want %s, %s, %s", tc.body, got, deref(got.SessionLifetime), tc.family, tc.timezone, tc.life)
			}
		}
		// A refused PUT changes none of them, the valid ones included.
		for _, body := range []string{`{"family":"vfs","timezone":"Mars/Olympus"}`, `{"timezone":"Europe/Paris","session_lifetime":"soon"}`, `{"family":"bls","session_lifetime":"1h"}`} {
			if st := call(t, "PUT", b.srv.URL+"/admin/portal", body, nil); st != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", body, st)
			}
		}
		if st := b.sim.State(); st.Family != Classic || st.Timezone != "UTC" || st.SessionLifetime != "" {
			t.Errorf("after refused PUTs: family %q, timezone %q, lifetime %q; want classic, UTC, none", st.Family, st.Timezone, st.SessionLifetime)
		}
	})

	t.Run("PutPortalSetsTheSessionLifetimeAndKeepsItWhenLeftOut", func(t *testing.T) {
		t.Parallel()
		_, b := setupFamily(t, Classic, feb15)
		var got portalLook
		if st := call(t, "PUT", b.srv.URL+"/admin/portal", `{"family":"classic","session_lifetime":"30m"}`, &got); st != http.StatusOK {
			t.Fatalf("PUT /admin/portal: %d", st)
		}
		if *got.SessionLifetime != "30m0s" || b.sim.State().SessionLifetime != "30m0s" {
			t.Errorf("answer %+v, state %q", got, b.sim.State().SessionLifetime)
		}
		call(t, "PUT", b.srv.URL+"/admin/portal", `{"family":"vfs"}`, &got)
		if *got.SessionLifetime != "30m0s" {
			t.Errorf("a PUT without session_lifetime changed it to %q", *got.SessionLifetime)
		}
		for _, body := range []string{`{"family":"vfs","session_lifetime":"-1s"}`, `{"family":"vfs","session_lifetime":"soon"}`} {
			if st := call(t, "PUT", b.srv.URL+"/admin/portal", body, nil); st != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", body, st)
			}
		}
		if st := call(t, "PUT", b.srv.URL+"/admin/state", `{"accounts":[],"missions":[],"behaviour":{},"session_lifetime":"1 hour"}`, nil); st != http.StatusBadRequest {
			t.Errorf("state with session_lifetime \"1 hour\": %d, want 400", st)
		}
	})

	t.Run("BadFamilyOrTimezoneIsRejectedWithAReason", func(t *testing.T) {
		t.Parallel()
		_, b := setupFamily(t, AIS, feb15)
		for _, body := range []string{`{"family":"bls"}`, `{"family":"vfs","timezone":"Mars/Olympus"}`, `{"family":"vfs","tz":"UTC"}`} {
			if st := call(t, "PUT", b.srv.URL+"/admin/portal", body, nil); st != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", body, st)
			}
		}
		if st := call(t, "PUT", b.srv.URL+"/admin/state", `{"accounts":[],"missions":[],"behaviour":{},"family":"bls"}`, nil); st != http.StatusBadRequest {
			t.Errorf("state with family bls: %d, want 400", st)
		}
		if b.sim.State().Family != AIS {
			t.Errorf("a refused change changed the family")
		}
	})

	t.Run("StateCarriesTheFamilyAndTimezone", func(t *testing.T) {
		t.Parallel()
		_, b := setupFamily(t, Classic, feb15)
		call(t, "PUT", b.srv.URL+"/admin/state", `{"accounts":[],"missions":[],"behaviour":{},"family":"vfs","timezone":"Europe/Paris"}`, nil)
		var st Config
		call(t, "GET", b.srv.URL+"/admin/state", "", &st)
		if st.Family != VFS || st.Timezone != "Europe/Paris" {
			t.Errorf("state %+v", st)
		}
	})

	t.Run("ParseFamilyTakesTheNames", func(t *testing.T) {
		t.Parallel()
		for name, want := range map[string]Family{"": Classic, "classic": Classic, " VFS ": VFS, "tls": TLS, "ais": AIS} {
			if got, err := ParseFamily(name); err != nil || got != want {
				t.Errorf("ParseFamily(%q) = %q, %v", name, got, err)
			}
		}
		if _, err := ParseFamily("bls"); err == nil || !strings.Contains(err.Error(), "classic, vfs, tls, ais") {
			t.Errorf("ParseFamily(bls): %v", err)
		}
	})
}

func TestConfigFamilyIsReadByName(t *testing.T) {
	t.Parallel()
	var cfg Config
	if err := strictUnmarshal([]byte(`{"accounts":[],"missions":[],"behaviour":{},"family":"classic","timezone":"Europe/London"}`), &cfg); err != nil || cfg.Family != Classic {
		t.Errorf("family classic: %q, %v", cfg.Family, err)
	}
	if err := strictUnmarshal([]byte(`{"family":"bls"}`), &cfg); err == nil || !strings.Contains(err.Error(), `family "bls"`) {
		t.Errorf("family bls: %v, want it refused by name", err)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
