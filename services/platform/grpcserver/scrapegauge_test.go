package grpcserver_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

func TestScrapeGauge(t *testing.T) {
	type color string
	desc := prometheus.NewDesc("test_things", "Things by color.", []string{"color"}, nil)
	var fail error
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	reg.MustRegister(grpcserver.ScrapeGauge(desc, func(ctx context.Context) (map[color]int, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the query has no deadline")
		}
		return map[color]int{"red": 2, "blue": 0}, fail
	}, slog.New(slog.NewTextHandler(&logs, nil)), "count things"))

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 2 {
		t.Fatalf("gathered %v, want one family of two series", mfs)
	}
	grpcservertest.WantMetric(t, reg, 2, "test_things", "color", "red")
	grpcservertest.WantMetric(t, reg, 0, "test_things", "color", "blue")

	// A failed query leaves the series out and is logged; the scrape succeeds.
	fail = errors.New("db down")
	mfs, err = reg.Gather()
	if err != nil || len(mfs) != 0 {
		t.Errorf("with the query failing: gathered %d families, err %v; want none and no error", len(mfs), err)
	}
	if !strings.Contains(logs.String(), "count things") || !strings.Contains(logs.String(), "db down") {
		t.Errorf("log %q does not name the failure", logs.String())
	}
}

func TestScrapeGaugeVecGivesEachKeyItsLabels(t *testing.T) {
	type key struct{ shape, color string }
	desc := prometheus.NewDesc("test_things", "Things by shape and color.", []string{"shape", "color"}, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(grpcserver.ScrapeGaugeVec(desc, func(context.Context) (map[key]int, error) {
		return map[key]int{{"round", "red"}: 2, {"round", "blue"}: 1}, nil
	}, func(k key) []string { return []string{k.shape, k.color} }, slog.Default(), "count things"))
	grpcservertest.WantMetric(t, reg, 2, "test_things", "shape", "round", "color", "red")
	grpcservertest.WantMetric(t, reg, 1, "test_things", "shape", "round", "color", "blue")
}
