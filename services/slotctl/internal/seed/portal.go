package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Portal is a client of portalsim's JSON admin API (/admin/).
type Portal struct {
	// BaseURL is portalsim's address, http://127.0.0.1:8090.
	BaseURL string
	HTTP    *http.Client
}

// The admin API's JSON, as services/portalsim/sim reads it (strictly: an
// unknown field is refused).
type (
	portalAccount struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	portalMission struct {
		Code           string   `json:"code"`
		Name           string   `json:"name"`
		Centres        []string `json:"centres"`
		VisaCategories []string `json:"visa_categories"`
	}
	portalState struct {
		Accounts []portalAccount `json:"accounts"`
		Missions []portalMission `json:"missions"`
	}
	portalSlot struct {
		Date string `json:"date"`
		Time string `json:"time,omitempty"`
	}
	portalSlots struct {
		Mission      string       `json:"mission"`
		Centre       string       `json:"centre"`
		VisaCategory string       `json:"visa_category"`
		Slots        []portalSlot `json:"slots"`
	}
)

// SetState replaces the portal's configuration: these accounts and
// missions, no slots, normal behaviour.
func (p *Portal) SetState(ctx context.Context, accounts []PortalAccount, missions []Mission) error {
	st := portalState{Accounts: []portalAccount{}, Missions: []portalMission{}}
	for _, a := range accounts {
		st.Accounts = append(st.Accounts, portalAccount{Email: a.Email, Password: a.Password})
	}
	for _, m := range missions {
		st.Missions = append(st.Missions, portalMission{Code: m.Code, Name: m.Name, Centres: m.Centres, VisaCategories: m.VisaCategories})
	}
	return p.put(ctx, "/admin/state", st)
}

// AddSlot makes one slot free on the portal (replacing the slots of its
// mission, centre and category).
func (p *Portal) AddSlot(ctx context.Context, s Slot) error {
	return p.SetSlots(ctx, s.Mission, s.Centre, s.VisaCategory, []Slot{s})
}

// SetSlots replaces the free slots of a mission, centre and category with
// slots' dates and times (none: no free slot there).
func (p *Portal) SetSlots(ctx context.Context, mission, centre, category string, slots []Slot) error {
	body := portalSlots{Mission: mission, Centre: centre, VisaCategory: category, Slots: []portalSlot{}}
	for _, s := range slots {
		body.Slots = append(body.Slots, portalSlot{Date: s.Date, Time: s.Time})
	}
	return p.put(ctx, "/admin/slots", body)
}

// Ready reports whether portalsim answers its admin API.
func (p *Portal) Ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL+"/admin/stats", nil)
	if err != nil {
		return false
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (p *Portal) put(ctx context.Context, path string, body any) error {
	return p.Do(ctx, http.MethodPut, path, body)
}

// Do sends body (none when nil) as JSON and wants a 2xx answer.
func (p *Portal) Do(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client().Do(req)
	if err != nil {
		return fmt.Errorf("portalsim %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("portalsim %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Get reads the JSON answer of GET path into out.
func (p *Portal) Get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return fmt.Errorf("portalsim GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("portalsim GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (p *Portal) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return http.DefaultClient
}
