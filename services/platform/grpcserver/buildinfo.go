package grpcserver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/platform/buildinfo"
)

// buildInfo is the slotwatch_build_info gauge: always 1, the build in its
// labels, so a dashboard shows which version each pod runs.
func buildInfo() prometheus.Collector {
	i := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "slotwatch_build_info",
		Help:        "The binary's build: 1, with its version, commit and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "go": i.Go},
	})
	g.Set(1)
	return g
}
