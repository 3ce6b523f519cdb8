// Package profiles holds the portal profiles shipped with the checker.
package profiles

import _ "embed"

// Portalsim is the profile of the simulated portal, the checker's default.
//
//go:embed portalsim.yaml
var Portalsim []byte
