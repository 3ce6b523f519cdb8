package sim

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed web/templates/*.html web/static/* web/vfs/*.html web/tls/*.html web/ais/*.html
var embedded embed.FS

// webFS serves /static/... from web/static.
var webFS = mustSub(embedded, "web")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded above, so this cannot happen
	}
	return sub
}

// pages holds each page template, each parsed with the shared layout.
type pages map[string]*template.Template

func parsePages() (pages, error) {
	p := pages{}
	for _, name := range []string{"login", "dashboard", "slots", "message", "unknown"} {
		t, err := template.New(name).ParseFS(embedded, "web/templates/layout.html", "web/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		p[name] = t
	}
	for _, f := range families[1:] {
		dir := "web/" + f.String() + "/"
		names, err := fs.Glob(embedded, dir+"*.html")
		if err != nil {
			return nil, err
		}
		for _, file := range names {
			name := strings.TrimSuffix(path.Base(file), ".html")
			if name == "layout" {
				continue
			}
			t, err := template.New(name).ParseFS(embedded, dir+"layout.html", file)
			if err != nil {
				return nil, fmt.Errorf("parse page %s: %w", file, err)
			}
			p[f.String()+"/"+name] = t
		}
	}
	return p, nil
}

// familyPage is what the vfs, tls and ais templates get.
type familyPage struct {
	Title     string
	Email     string // signed in as
	Mission   Mission
	FormToken string
	Error     string
	Notice    string
	Wall      wallPage
	Data      any // the page's own data
}

// pageData is what every template gets; each page uses a few fields.
type pageData struct {
	Title     string
	Page      string // the body's data-page attribute
	Email     string // the signed-in account, shown in the top bar
	Passport  string // the signed-in account's applicant's (Account.Passport)
	Error     string
	LoggedOut bool
	FormToken string
	Missions  []Mission
	Mission   Mission
	Message   message
}

// message is a page that replaces the portal's normal answer. MarkerID is
// the id of its main element, which a checker profile looks for.
type message struct {
	MarkerID string
	Heading  string
	Text     string
	Captcha  bool
}

var (
	blockedPage = message{MarkerID: "account-blocked", Heading: "This account is blocked",
		Text: "For security reasons this account has been blocked. Contact the visa application centre to unblock it."}
	rateLimitedPage = message{MarkerID: "rate-limited", Heading: "Too many requests",
		Text: "You have made too many requests. Please try again later."}
	captchaPage = message{MarkerID: "captcha-challenge", Heading: "Verify you are human",
		Text: "Complete the security check to continue.", Captcha: true}
	maintenancePage = message{MarkerID: "maintenance", Heading: "Scheduled maintenance",
		Text: "The appointment system is down for maintenance. Please come back later."}
	notFoundPage = message{MarkerID: "not-found", Heading: "Page not found",
		Text: "The page you asked for does not exist."}
	formExpiredPage = message{MarkerID: "form-expired", Heading: "Your session has expired",
		Text: "Reload the sign-in page and try again."}
)

func (s *Sim) renderMessage(w http.ResponseWriter, status int, m message) {
	s.render(w, status, "message", pageData{Title: m.Heading, Page: m.MarkerID, Message: m})
}

// render executes into a buffer first so a template error becomes a clean
// 500 instead of half a page.
func (s *Sim) render(w http.ResponseWriter, status int, name string, d any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
