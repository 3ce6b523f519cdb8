package auth

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadEvery is how often a watched file is looked at again. Files
// are read when used (an RPC, a TLS handshake), at most this often; only
// while something holds the value open (an authenticated stream, see
// WatchAuthorization) does one goroutine per file also re-read it this often,
// so that a change is seen without other traffic.
const DefaultReloadEvery = 2 * time.Second

// settleDelay is how soon a watched that fails closed looks again at a
// file that failed once, before putting its closed value in force.
const settleDelay = 100 * time.Millisecond

// watched holds what parse made of one or more files and makes it again
// when their content changes. Reading the content, rather than watching
// modification times, also sees a Kubernetes Secret's atomic symlink swap
// and copies that keep the old mtime. A read or parse that fails keeps the
// previous value and is logged once per distinct problem, unless the
// watched fails closed (see failClosed).
type watched[T any] struct {
	paths  []string
	what   string
	parse  func(contents [][]byte) (T, error)
	closed *failClosed[T]
	every  time.Duration
	logger *slog.Logger
	now    func() time.Time

	cur       atomic.Pointer[version[T]]
	nextCheck atomic.Int64 // unix nanoseconds

	mu      sync.Mutex // held by the one goroutine that re-reads
	sum     [sha256.Size]byte
	problem string
	failed  bool // closed.value is in force
	suspect bool // the last look failed once; the next one decides

	pollMu   sync.Mutex // guards holders and stopPoll
	holders  int
	stopPoll chan struct{} // closed when the last holder releases
}

// version is one value in force and a channel closed when a newer one
// replaces it.
type version[T any] struct {
	v       *T
	changed chan struct{}
}

// failClosed is what a watched puts in force when a re-read fails (a file
// deleted, unreadable, or no longer parsing), instead of keeping the
// previous value: for a tokens file, no tokens. The failure is logged at
// ERROR with message.
type failClosed[T any] struct {
	value   T
	message string
}

// newWatched reads and parses paths now (an error if that fails). closed,
// if not nil, is what a later failed re-read puts in force.
func newWatched[T any](what string, paths []string, every time.Duration, logger *slog.Logger, closed *failClosed[T], parse func([][]byte) (T, error)) (*watched[T], error) {
	if every <= 0 {
		every = DefaultReloadEvery
	}
	if logger == nil {
		logger = slog.Default()
	}
	w := &watched[T]{paths: paths, what: what, parse: parse, closed: closed, every: every, logger: logger, now: time.Now}
	contents, sum, err := w.read()
	if err != nil {
		return nil, err
	}
	v, err := parse(contents)
	if err != nil {
		return nil, err
	}
	w.cur.Store(&version[T]{v: &v, changed: make(chan struct{})})
	w.sum = sum
	w.nextCheck.Store(w.now().Add(every).UnixNano())
	return w, nil
}

func (w *watched[T]) read() ([][]byte, [sha256.Size]byte, error) {
	h := sha256.New()
	contents := make([][]byte, len(w.paths))
	for i, p := range w.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("read %s: %w", w.what, err)
		}
		contents[i] = b
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return contents, sum, nil
}

// get returns the current value, first re-reading the files if it is time.
// Only one caller re-reads; the others go on with the value in force.
func (w *watched[T]) get() *T {
	v, _ := w.latest()
	return v
}

// latest is get, with a channel that is closed when a newer value than the
// one returned comes into force.
func (w *watched[T]) latest() (*T, <-chan struct{}) {
	if w.now().UnixNano() >= w.nextCheck.Load() && w.mu.TryLock() {
		w.reload()
		w.mu.Unlock()
	}
	ver := w.cur.Load()
	return ver.v, ver.changed
}

// hold re-reads the files every w.every in the background until release is
// called, so that whoever waits on latest's channel learns of a change even
// when nothing else calls get. Holders share one goroutine, which ends when
// the last of them releases.
func (w *watched[T]) hold() (release func()) {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	if w.holders == 0 {
		w.stopPoll = make(chan struct{})
		go w.poll(w.stopPoll)
	}
	w.holders++
	var once sync.Once
	return func() {
		once.Do(func() {
			w.pollMu.Lock()
			defer w.pollMu.Unlock()
			if w.holders--; w.holders == 0 {
				close(w.stopPoll)
				w.stopPoll = nil
			}
		})
	}
}

// poll re-reads through latest when the next check is due, so that with
// calls re-reading too the files are still read at most once per w.every.
func (w *watched[T]) poll(stop <-chan struct{}) {
	timer := time.NewTimer(w.untilNextCheck())
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
			w.latest()
			timer.Reset(w.untilNextCheck())
		}
	}
}

// untilNextCheck is the time until a re-read is due, at least a
// millisecond (a re-read in progress elsewhere moves it on).
func (w *watched[T]) untilNextCheck() time.Duration {
	return max(time.Duration(w.nextCheck.Load()-w.now().UnixNano()), time.Millisecond)
}

func (w *watched[T]) reload() {
	w.nextCheck.Store(w.now().Add(w.every).UnixNano())
	contents, sum, err := w.read()
	if err == nil && sum == w.sum {
		w.suspect = false
		return
	}
	var v T
	if err == nil {
		v, err = w.parse(contents)
	} else {
		sum = [sha256.Size]byte{} // nothing was read: whatever comes back is parsed anew
	}
	if err != nil {
		w.fail(err, sum)
		return
	}
	w.sum, w.problem, w.failed, w.suspect = sum, "", false, false
	w.put(v)
	w.logger.Info("reloaded "+w.what, "files", w.paths)
}

func (w *watched[T]) put(v T) {
	close(w.cur.Swap(&version[T]{v: &v, changed: make(chan struct{})}).changed)
}

// fail handles a re-read that failed: the previous value stays in force,
// or, failing closed, closed.value replaces it once a second look, soon
// after, fails too. sum is the content that failed (zero when there was
// none to read).
func (w *watched[T]) fail(err error, sum [sha256.Size]byte) {
	if w.closed == nil {
		if sum != ([sha256.Size]byte{}) {
			w.sum = sum // this content is bad: say so once, not on every look
		}
		w.report(err)
		return
	}
	if !w.failed && !w.suspect {
		// A file rewritten in place (truncated, then written) can be read
		// half-written: look again shortly before failing closed.
		w.suspect = true
		w.nextCheck.Store(w.now().Add(min(settleDelay, w.every)).UnixNano())
		return
	}
	w.sum, w.suspect = sum, false
	if !w.failed {
		w.failed = true
		w.put(w.closed.value)
	}
	if msg := err.Error(); msg != w.problem {
		w.problem = msg
		w.logger.Error(w.closed.message, "error", msg)
	}
}

func (w *watched[T]) report(err error) {
	if msg := err.Error(); msg != w.problem {
		w.problem = msg
		w.logger.Warn("cannot reload "+w.what+"; keeping the previous one in force", "error", msg)
	}
}
