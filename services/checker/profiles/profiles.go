// Package profiles holds the portal profiles shipped with the checker, one
// per portalsim family: portalsim (the default), vfs, tls and ais.
package profiles

import (
	"embed"
	"io/fs"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Portalsim is the profile of the simulated portal, the checker's default.
//
//go:embed portalsim.yaml
var Portalsim []byte

// Get returns the shipped profile of a name (PORTAL_PROFILE), and whether
// there is one.
func Get(name string) ([]byte, bool) {
	if name == "" || strings.ContainsAny(name, "/.\\") {
		return nil, false
	}
	b, err := files.ReadFile(name + ".yaml")
	return b, err == nil
}

// Names are the shipped profiles' names.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}
