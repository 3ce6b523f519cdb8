package sim

import "net/http"

// wallPage is what a family shows instead of its normal answer for a
// misbehaviour kind: its own words and HTTP status, as real portals differ
// in both. Code is the error code of the family's JSON APIs.
type wallPage struct {
	Status    int
	Code      string
	Heading   string
	Text      string
	Challenge bool // a "verify you are human" widget
	Promo     bool // the unknown kind: a page that is neither error nor portal
}

// familyWalls holds each family's pages, by kind (ServerError is a bare
// 500 in every family, and classic keeps its own pages in pages.go).
var familyWalls = map[Family]map[Kind]wallPage{
	VFS: {
		Blocked: {Status: http.StatusForbidden, Code: "403201", Heading: "Access restricted",
			Text: "We noticed unusual activity from this account, so access to it is restricted for now (error 403201)."},
		TooManyRequests: {Status: http.StatusTooManyRequests, Code: "429001", Heading: "Access restricted for this user",
			Text: "There have been too many requests from this user. Please try again later (error 429001)."},
		Captcha: {Status: http.StatusForbidden, Code: "challenge", Heading: "Just a moment…",
			Text: "We are checking that you are a person. Complete the check below to continue.", Challenge: true},
		Maintenance: {Status: http.StatusServiceUnavailable, Code: "503", Heading: "Services will be back shortly",
			Text: "We are carrying out planned maintenance. Thank you for your patience."},
		Unknown: {Status: http.StatusOK, Heading: "Discover our premium services",
			Text: "Relax in our lounge while your application is processed.", Promo: true},
	},
	TLS: {
		Blocked: {Status: http.StatusForbidden, Code: "blocked", Heading: "Security Notice",
			Text: "Your access to this service has been suspended for security reasons."},
		TooManyRequests: {Status: http.StatusTooManyRequests, Code: "too_many_requests", Heading: "Too many requests",
			Text: "You have sent too many requests in a short time. Please wait before trying again."},
		Captcha: {Status: http.StatusOK, Code: "captcha", Heading: "Please confirm you are human",
			Text: "Solve the puzzle below to continue to your application.", Challenge: true},
		Maintenance: {Status: http.StatusServiceUnavailable, Code: "maintenance", Heading: "Website under maintenance",
			Text: "Our website is currently undergoing maintenance. Please come back later."},
		Unknown: {Status: http.StatusOK, Heading: "Latest news",
			Text: "Opening hours will change during the holiday season.", Promo: true},
	},
	AIS: {
		Blocked: {Status: http.StatusForbidden, Code: "account_locked", Heading: "Your account is locked",
			Text: "Your account has been locked. Contact customer support to unlock it."},
		TooManyRequests: {Status: http.StatusTooManyRequests, Code: "too_many_requests", Heading: "Too many requests",
			Text: "You have made too many requests. Please try again later."},
		Captcha: {Status: http.StatusOK, Code: "captcha", Heading: "Security check",
			Text: "Please complete the security check before you continue.", Challenge: true},
		Maintenance: {Status: http.StatusServiceUnavailable, Code: "maintenance", Heading: "System maintenance",
			Text: "The system is unavailable while we carry out maintenance. Please try again later."},
		Unknown: {Status: http.StatusOK, Heading: "Important information for applicants",
			Text: "Read about the documents you need before your interview.", Promo: true},
	},
}

func wallOf(f Family, k Kind) wallPage { return familyWalls[f][k] }
