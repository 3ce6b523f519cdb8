package pgdb

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable says whether err means that the database could not be
// reached or dropped the connection (a restart, a failover, a network
// fault, a terminated backend, no connection slot free): nothing the caller
// did wrong, and a retry may succeed. Services answer it with UNAVAILABLE,
// not INTERNAL.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources: too_many_connections, out of memory, disk full
			"57": // operator intervention: admin_shutdown, crash_shutdown, cannot_connect_now, query_canceled
			return true
		}
		return pgErr.Code == "40001" || pgErr.Code == "40P01" // serialization failure, deadlock: retry
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
