// Package openapi holds the OpenAPI (Swagger 2.0) documents generated from
// proto/ by protoc-gen-openapiv2 (see buf.gen.yaml); `make generate` writes
// them next to this file.
package openapi

import _ "embed"

// Requests is the document of the Requests JSON gateway: every route of
// proto/slotwatch/requests/v1/requests_gateway.yaml, in JSON.
//
//go:embed slotwatch/requests/v1/requests.swagger.json
var Requests []byte
