package main

import (
	"testing"

	"github.com/slotwatch/slotwatch/services/platform/grpcserver/grpcservertest"
)

// TestServeNamesEveryBadSettingWithTheEdgeOnes: the
// settings LoadEdge reads from the same environment (rate limit, gRPC
// limits, log level) were checked only after loadConfig passed, so a bad
// POOL_LEASE_TTL beside a bad RATE_LIMIT_RPS took two restarts.
func TestServeNamesEveryBadSettingWithTheEdgeOnes(t *testing.T) {
	grpcservertest.WantRefusal(t, run, map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/db", "ENCRYPTION_KEYSET_FILE": "/dev/null",
		"POOL_LEASE_TTL": "2h", "RATE_LIMIT_RPS": "fifty", "GRPC_MAX_CONNS_PER_PEER": "0"},
		"want every bad setting named", "POOL_LEASE_TTL=2h", "RATE_LIMIT_RPS", "GRPC_MAX_CONNS_PER_PEER")
}
