-- ListAppointmentRequests filters by mission or by status and pages in
-- (created_at, id) order. With only the (created_at, id) index, a filtered
-- page walked it through every request, history included, keeping the few
-- that matched. These indexes answer each filter with the page's keyset as
-- an index condition, in page order. (The applicant filter has
-- appointment_requests_applicant_idx since 00001.)

-- +goose Up
CREATE INDEX appointment_requests_mission_page_idx ON requests.appointment_requests (mission_code, created_at, id);
CREATE INDEX appointment_requests_status_page_idx ON requests.appointment_requests (status, created_at, id);

-- +goose Down
DROP INDEX requests.appointment_requests_status_page_idx;
DROP INDEX requests.appointment_requests_mission_page_idx;
