-- ListAppointmentRequests filters by mission or by status and pages in
-- (created_at, id) order. With only the (created_at, id) index, a filtered
-- page walked it through every request, history included, keeping the few
-- that matched. These indexes answer each filter with the page's keyset as
-- an index condition, in page order. (The applicant filter has
-- appointment_requests_applicant_idx since 00001.)
--
-- Built CONCURRENTLY, so writes go on while they build (pgdb.Migrations.Lint);
-- that needs no transaction. A build that fails leaves an INVALID index:
-- drop it and migrate again.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS appointment_requests_mission_page_idx ON requests.appointment_requests (mission_code, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS appointment_requests_status_page_idx ON requests.appointment_requests (status, created_at, id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS requests.appointment_requests_status_page_idx;
DROP INDEX CONCURRENTLY IF EXISTS requests.appointment_requests_mission_page_idx;
