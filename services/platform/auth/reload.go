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
// are read only when used (an RPC, a TLS handshake), at most this often, so
// nothing runs in the background.
const DefaultReloadEvery = 2 * time.Second

// watched holds what parse made of one or more files and makes it again
// when their content changes. Reading the content, rather than watching
// modification times, also sees a Kubernetes Secret's atomic symlink swap
// and copies that keep the old mtime. A read or parse that fails keeps the
// previous value and is logged once per distinct problem.
type watched[T any] struct {
	paths  []string
	what   string
	parse  func(contents [][]byte) (T, error)
	every  time.Duration
	logger *slog.Logger
	now    func() time.Time

	cur       atomic.Pointer[T]
	nextCheck atomic.Int64 // unix nanoseconds

	mu      sync.Mutex // held by the one goroutine that re-reads
	sum     [sha256.Size]byte
	problem string
}

func newWatched[T any](what string, paths []string, every time.Duration, logger *slog.Logger, parse func([][]byte) (T, error)) (*watched[T], error) {
	if every <= 0 {
		every = DefaultReloadEvery
	}
	if logger == nil {
		logger = slog.Default()
	}
	w := &watched[T]{paths: paths, what: what, parse: parse, every: every, logger: logger, now: time.Now}
	contents, sum, err := w.read()
	if err != nil {
		return nil, err
	}
	v, err := parse(contents)
	if err != nil {
		return nil, err
	}
	w.cur.Store(&v)
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
	if w.now().UnixNano() >= w.nextCheck.Load() && w.mu.TryLock() {
		w.reload()
		w.mu.Unlock()
	}
	return w.cur.Load()
}

func (w *watched[T]) reload() {
	w.nextCheck.Store(w.now().Add(w.every).UnixNano())
	contents, sum, err := w.read()
	if err != nil {
		w.report(err)
		return
	}
	if sum == w.sum {
		return
	}
	v, err := w.parse(contents)
	if err != nil {
		w.sum = sum // this content is bad: say so once, not on every look
		w.report(err)
		return
	}
	w.sum, w.problem = sum, ""
	w.cur.Store(&v)
	w.logger.Info("reloaded "+w.what, "files", w.paths)
}

func (w *watched[T]) report(err error) {
	if msg := err.Error(); msg != w.problem {
		w.problem = msg
		w.logger.Warn("cannot reload "+w.what+"; keeping the previous one in force", "error", msg)
	}
}
