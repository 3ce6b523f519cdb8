package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	requestsv1 "github.com/slotwatch/slotwatch/gen/slotwatch/requests/v1"
)

// Gateway is the JSON/HTTP API for web clients (the routes are the HTTP
// rules in proto/slotwatch/requests/v1/requests_gateway.yaml). It calls the
// gRPC server through conn, so every call passes the same interceptor chain,
// and errors keep their gRPC meaning: NOT_FOUND is 404, INVALID_ARGUMENT is
// 400 with the google.rpc.BadRequest field violations in "details". JSON
// uses the proto field names (full_name), as the field violations do, and
// an unknown field is rejected rather than silently ignored.
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
	return mux, nil
}
