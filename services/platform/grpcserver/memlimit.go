package grpcserver

import (
	"fmt"
	"log/slog"
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
// setting and wins; with neither set nothing changes. It returns the
// limit in force (math.MaxInt64: none).
func setMemoryLimit(env *envconfig.Loader, logger *slog.Logger) (int64, error) {
	if v, ok := env.Lookup("GOMEMLIMIT"); ok && v != "" {
		return debug.SetMemoryLimit(-1), nil
	}
	v, ok := env.Lookup("MEMORY_LIMIT")
	if !ok || v == "" {
		return debug.SetMemoryLimit(-1), nil
	}
	limit, err := strconv.ParseInt(v, 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("MEMORY_LIMIT=%q: want the container's memory limit in bytes (resourceFieldRef limits.memory)", v)
	}
	share := defaultGoMemoryShare
	if v, ok := env.Lookup("GO_MEMORY_SHARE"); ok && v != "" {
		share, err = strconv.ParseFloat(v, 64)
		if err != nil || share <= 0 || share > 1 {
			return 0, fmt.Errorf("GO_MEMORY_SHARE=%q: want a number more than 0 and at most 1", v)
		}
	}
	soft := int64(float64(limit) * share)
	debug.SetMemoryLimit(soft)
	logger.Info("Go memory limit set", "bytes", soft, "container_limit_bytes", limit, "share", share)
	return soft, nil
}
