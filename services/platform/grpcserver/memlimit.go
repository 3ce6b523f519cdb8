package grpcserver

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"

	"github.com/slotwatch/slotwatch/services/platform/envconfig"
)

// defaultGoMemoryShare is the share of the container's memory limit the Go
// runtime aims to stay under when nothing else shares the container: the
// rest is room for what the runtime does not count (the Go GC guide's
// "5-10 % of headroom").
const defaultGoMemoryShare = 0.9

// setMemoryLimit sets the Go runtime's soft memory limit to GO_MEMORY_SHARE
// (0.9 by default) of MEMORY_LIMIT, the container's memory limit in bytes
// (the manifests pass limits.memory through the Downward API). A share,
// not the whole limit: in Checker's container Chromium's processes live
// under the same limit and the Go runtime does not see them, so its
// manifest gives Go a quarter. GOMEMLIMIT, when set, is the runtime's own
// setting and wins; with neither set nothing changes (a GO_MEMORY_SHARE
// is still checked). It returns the limit in force (math.MaxInt64: none).
func setMemoryLimit(env *envconfig.Loader, logger *slog.Logger) (int64, error) {
	share := env.Float("GO_MEMORY_SHARE", defaultGoMemoryShare)
	if err := env.Err(); err != nil {
		return 0, err
	}
	if share == 0 || share > 1 {
		return 0, fmt.Errorf("GO_MEMORY_SHARE=%q: want a number more than 0 and at most 1", env.String("GO_MEMORY_SHARE", ""))
	}
	v := env.String("MEMORY_LIMIT", "")
	if v == "" || env.String("GOMEMLIMIT", "") != "" {
		return debug.SetMemoryLimit(-1), nil
	}
	limit, err := strconv.ParseInt(v, 10, 64)
	if err != nil || limit < minMemoryLimit {
		return 0, fmt.Errorf("MEMORY_LIMIT=%q: want the container's memory limit in bytes, at least %d (resourceFieldRef limits.memory, without a divisor)", v, minMemoryLimit)
	}
	soft := int64(math.MaxInt64)
	if f := float64(limit) * share; f < math.MaxInt64 {
		soft = int64(f)
	}
	debug.SetMemoryLimit(soft)
	logger.Info("Go memory limit set", "bytes", soft, "container_limit_bytes", limit, "share", share)
	return soft, nil
}

// minMemoryLimit is the smallest MEMORY_LIMIT taken for a number of bytes:
// below it the value is more likely in other units (a resourceFieldRef
// with a divisor of 1Mi gives "256" for 256 Mi), which as bytes would have
// the collector run without end.
const minMemoryLimit = 16 << 20
