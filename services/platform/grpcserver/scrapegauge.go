package grpcserver

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ScrapeTimeout bounds the query a ScrapeGauge makes at each scrape.
const ScrapeTimeout = 3 * time.Second

// ScrapeGauge is a collector of desc, a gauge with one label, whose values
// query reads at each scrape (one value per label value), so the gauge is
// what the database says, across every replica, not what this process saw.
// A query that fails leaves the series out of that scrape, logged as a
// warning with msg, rather than failing the whole scrape: the RPC and
// process metrics are still worth having.
func ScrapeGauge[K ~string](desc *prometheus.Desc, query func(context.Context) (map[K]int, error), logger *slog.Logger, msg string) prometheus.Collector {
	return ScrapeGaugeVec(desc, query, func(k K) []string { return []string{string(k)} }, logger, msg)
}

// ScrapeGaugeVec is ScrapeGauge for a gauge of more than one label: labels
// gives a key's label values, in desc's order.
func ScrapeGaugeVec[K comparable](desc *prometheus.Desc, query func(context.Context) (map[K]int, error), labels func(K) []string, logger *slog.Logger, msg string) prometheus.Collector {
	return &scrapeGauge[K]{desc: desc, query: query, labels: labels, logger: logger, msg: msg}
}

type scrapeGauge[K comparable] struct {
	desc   *prometheus.Desc
	query  func(context.Context) (map[K]int, error)
	labels func(K) []string
	logger *slog.Logger
	msg    string
}

func (g *scrapeGauge[K]) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *scrapeGauge[K]) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	values, err := g.query(ctx)
	if err != nil {
		g.logger.Warn(g.msg, "error", err)
		return
	}
	for key, n := range values {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n), g.labels(key)...)
	}
}
