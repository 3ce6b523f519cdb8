package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Default artifact limits (CHECKER_ARTIFACTS_MAX_BYTES,
// CHECKER_ARTIFACTS_TOTAL_BYTES, CHECKER_ARTIFACTS_MAX_AGE): a page's HTML
// and screenshot are rarely above a few MiB, and the manifests give the
// artifacts volume 1 GiB. Three days cover a weekend between a failure and
// the operator who looks at it.
const (
	DefaultArtifactsMaxBytes   = 8 << 20
	DefaultArtifactsTotalBytes = 512 << 20
	DefaultArtifactsMaxAge     = 72 * time.Hour
)

// sweepEvery is how often the folders past their age are deleted
// (SweepArtifacts, and a check's start at most this often); saves delete
// them too.
const sweepEvery = time.Minute

// artifactStore writes the artifacts of checks under one directory, within
// a byte budget per check and in total: before a check's folder is
// written, the oldest folders are deleted until the new one fits, so the
// volume cannot fill. Folders older than maxAge are deleted as well. The
// folders and files are the Checker's user's alone (0700, 0600): a page
// can hold an applicant's personal data and the portal session's tokens.
type artifactStore struct {
	dir      string
	perCheck int64
	total    int64
	maxAge   time.Duration
	// pages says to keep the page's HTML and screenshot
	// (CHECKER_ARTIFACTS_PAGES); without it a check keeps check.json only.
	pages bool
	mu    sync.Mutex // one writer at a time, so the total holds
	// swept is when sweep last deleted the folders past their age.
	swept time.Time
	// every is how often sweep deletes them: sweepEvery when 0 (tests
	// shorten it).
	every time.Duration
	// sizes is each check folder's disk use (dirSize) by name, as last
	// measured: only save writes into a folder, so a folder is walked once
	// (when written, or when first seen after a restart), not on every
	// save and sweep (with 20,000 folders a walk of them all took seconds
	// under mu). makeRoom drops the folders gone from the directory.
	sizes map[string]int64
}

// artifactFile is one file of a check's folder.
type artifactFile struct {
	name string
	body []byte
	// optional files are left out, whole, when they do not fit the
	// check's budget; the others are cut to fit.
	optional bool
}

// folderRE matches the folders saveArtifacts names (a UTC time first, so
// that names sort oldest first); nothing else in the directory is deleted.
var folderRE = regexp.MustCompile(`^\d{8}T\d{6}\.\d{3}Z-`)

// save writes files into the folder name, within the budgets, and returns
// the paths written by file name. A file that did not fit is missing.
func (s *artifactStore) save(name string, files []artifactFile) (map[string]string, error) {
	// The check's budget: the required files first, cut if need be, then
	// the optional ones that fit whole.
	left := s.perCheck
	var keep []artifactFile
	for _, f := range files {
		if !f.optional {
			if int64(len(f.body)) > left {
				f.body = f.body[:max(left, 0)]
			}
			left -= int64(len(f.body))
			keep = append(keep, f)
		}
	}
	for _, f := range files {
		if f.optional && int64(len(f.body)) <= left {
			left -= int64(len(f.body))
			keep = append(keep, f)
		}
	}
	// The total budget counts disk use, not lengths: a folder of one
	// 600-byte check.json takes a directory block and a file block.
	size := int64(diskBlock) // the folder
	for _, f := range keep {
		size += roundUp(int64(len(f.body)), diskBlock)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.makeRoom(size, time.Now()); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	var errs []error
	for _, f := range keep {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.body, 0o600); err != nil {
			errs = append(errs, err)
			continue
		}
		paths[f.name] = p
	}
	if folderRE.MatchString(name) {
		s.sizes[name] = dirSize(dir)
	}
	return paths, errors.Join(errs...)
}

// diskBlock is the allocation unit save assumes for a new folder's budget
// (ext4's and most file systems' 4 KiB). makeRoom then counts what the
// folder really takes (dirSize).
const diskBlock = 4096

// FolderOverhead is the most disk a check's folder takes beyond its
// files' lengths: the folder's block and each of its files (check.json,
// page.html, screenshot.png) rounded up to a block.
const FolderOverhead = 4 * diskBlock

// TotalHoldsACheck says whether a total artifacts budget (disk use) holds
// one check's folder at the per-check budget (lengths): one rule for the
// Checker's settings and the driver's.
func TotalHoldsACheck(total, perCheck int64) bool {
	return total >= perCheck+FolderOverhead
}

func roundUp(n, unit int64) int64 {
	return (n + unit - 1) / unit * unit
}

// sweep deletes the folders older than maxAge. A check calls it as it
// starts (due true: only when an interval has passed since the last sweep
// or save), and SweepArtifacts on its ticker, every interval (due false:
// a tick's wake-up jitter must not make it skip its turn), so folders go
// even when no check saves any. mu makes it one sweep at a time.
func (s *artifactStore) sweep(now time.Time, due bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if due && now.Sub(s.swept) < s.interval() {
		return nil
	}
	return s.makeRoom(0, now)
}

// interval is how often sweep deletes the folders past their age.
func (s *artifactStore) interval() time.Duration {
	if s.every > 0 {
		return s.every
	}
	return sweepEvery
}

// makeRoom deletes the check folders older than maxAge at now, then the
// oldest ones until size more bytes fit in the total budget. The caller
// holds mu.
func (s *artifactStore) makeRoom(size int64, now time.Time) error {
	s.swept = now
	if s.sizes == nil {
		s.sizes = map[string]int64{}
	}
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list artifacts: %w", err)
	}
	type folder struct {
		name string
		size int64
	}
	var folders []folder
	var used int64
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if !e.IsDir() || !folderRE.MatchString(e.Name()) {
			continue
		}
		n, ok := s.sizes[e.Name()]
		if !ok {
			n = dirSize(filepath.Join(s.dir, e.Name()))
			s.sizes[e.Name()] = n
		}
		seen[e.Name()] = true
		folders = append(folders, folder{e.Name(), n})
		used += n
	}
	for name := range s.sizes {
		if !seen[name] {
			delete(s.sizes, name) // deleted by someone else
		}
	}
	slices.SortFunc(folders, func(a, b folder) int { return strings.Compare(a.name, b.name) })
	for _, f := range folders {
		if used+size <= s.total && !s.expired(f.name, now) {
			break
		}
		if err := os.RemoveAll(filepath.Join(s.dir, f.name)); err != nil {
			delete(s.sizes, f.name) // partly deleted: measure it again
			return fmt.Errorf("delete old artifacts: %w", err)
		}
		delete(s.sizes, f.name)
		used -= f.size
	}
	return nil
}

// expired says whether the folder name (saveArtifacts': its UTC time first)
// was written more than maxAge before now. A name whose time does not
// parse is not ours to judge: it is kept.
func (s *artifactStore) expired(name string, now time.Time) bool {
	if s.maxAge <= 0 || len(name) < len(folderTime) {
		return false
	}
	at, err := time.Parse(folderTime, name[:len(folderTime)])
	return err == nil && now.Sub(at) > s.maxAge
}

// folderTime is the layout of the time a check folder's name begins with.
const folderTime = "20060102T150405.000Z"

// dirSize is the disk dir takes: its files' and directories' blocks
// (diskUse), itself included. The volume fills by blocks, and a folder of
// a 600-byte check.json takes 8 KiB.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil {
			if info, err := d.Info(); err == nil {
				n += diskUse(info)
			}
		}
		return nil
	})
	return n
}

// redactSecret replaces secret in s, in the forms a page or a URL may hold
// it: as typed, HTML-escaped (as Go and as a browser's serializer escape
// text and attributes), URL-encoded (query and path escaping, and
// JavaScript's encodeURIComponent) and JSON-escaped. A secret shorter than
// 4 bytes is left alone: replacing it would mangle the page without
// protecting anything.
func redactSecret(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	forms := []string{
		secret,
		html.EscapeString(secret),
		strings.NewReplacer("&", "&amp;", "\u00a0", "&nbsp;", `"`, "&quot;").Replace(secret),            // attribute
		strings.NewReplacer("&", "&amp;", "\u00a0", "&nbsp;", "<", "&lt;", ">", "&gt;").Replace(secret), // text
		url.QueryEscape(secret),
		url.PathEscape(secret),
		encodeURIComponent(secret),
		jsonEscape(secret, true),
		jsonEscape(secret, false),
	}
	// Longest first, so that no form is left half replaced by a shorter one
	// it contains.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	for _, f := range slices.Compact(forms) {
		s = strings.ReplaceAll(s, f, "[password redacted]")
		if lower := strings.ToLower(f); lower != f && strings.Contains(f, "%") {
			s = strings.ReplaceAll(s, lower, "[password redacted]") // %2f as well as %2F
		}
	}
	return s
}

// encodeURIComponent is JavaScript's: it keeps A-Z a-z 0-9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// jsonEscape is s as a JSON string without its quotes, with or without
// the escaping of <, > and & that Go (and some servers) add.
func jsonEscape(s string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s)
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// redactURL is u without what may carry a secret: user info, query string
// and fragment.
func redactURL(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil {
		return "[unparseable URL]"
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return p.String()
}

// urlInTextRE finds URLs in free text, such as an error message.
var urlInTextRE = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// redactDetail is a result's detail as readers may see it: no URL in it
// keeps its query string or fragment, and the password is in no form.
func redactDetail(detail, password string) string {
	detail = urlInTextRE.ReplaceAllStringFunc(detail, redactURL)
	return redactSecret(detail, password)
}
