package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/slotwatch/slotwatch/gen/openapi"
	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
	"github.com/slotwatch/slotwatch/services/platform/grpcserver"
)

// Gateway is the JSON/HTTP API for web clients (the routes are the HTTP
// rules in proto/slotwatch/requests/v1/requests_gateway.yaml). It calls the
// gRPC server through conn, so every call passes the same interceptor chain,
// and errors keep their gRPC meaning: NOT_FOUND is 404, INVALID_ARGUMENT is
// 400 with the google.rpc.BadRequest field violations in "details". JSON
// uses the proto field names (full_name), as the field violations do, and
// an unknown field is rejected rather than silently ignored.
//
// GET /openapi.json is the OpenAPI document of these routes, generated from
// the same rules file; it is public, as it calls no RPC.
func Gateway(ctx context.Context, conn *grpc.ClientConn) (http.Handler, error) {
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		},
	}))
	if err := requestsv1.RegisterRequestsServiceHandlerClient(ctx, mux, requestsv1.NewRequestsServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("register gateway: %w", err)
	}
	err := mux.HandlePath(http.MethodGet, grpcserver.OpenAPIPath, func(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapi.Requests)
	})
	if err != nil {
		return nil, fmt.Errorf("serve openapi.json: %w", err)
	}
	return mux, nil
}
