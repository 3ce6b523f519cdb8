// Package buildinfo is what a binary knows of its own build: the release
// version and the commit, set by the linker (make build and the Dockerfiles
// pass -ldflags "-X ...buildinfo.version=v0.2.0 -X ...buildinfo.commit=abc123"),
// else read from the VCS stamp Go embeds, else "dev" / "unknown".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X; the package path is
// github.com/slotwatch/slotwatch/services/platform/buildinfo.
var (
	version string
	commit  string
)

// Info is one binary's build.
type Info struct {
	Version string // release tag ("v0.2.0"), or "dev"
	Commit  string // VCS revision, with "-dirty" if the tree had changes, or "unknown"
	Go      string // the Go toolchain ("go1.26.8")
}

// Get returns this binary's build.
func Get() Info {
	info := Info{Version: version, Commit: commit, Go: runtime.Version()}
	if info.Commit == "" {
		info.Commit = vcsRevision()
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// String is the line `--version` prints: "accountpool v0.2.0 (commit abc123, go1.26.8)".
func (i Info) String(binary string) string {
	return fmt.Sprintf("%s %s (commit %s, %s)", binary, i.Version, i.Commit, i.Go)
}
