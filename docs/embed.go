// Package docs embeds the documents skyfleet serves itself: the OpenAPI description of the
// HTTP API (served at /v1/openapi.yaml). The rest of docs/ is for readers, not for the binary.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml: the OpenAPI 3.0 description of every HTTP route.
//
//go:embed openapi.yaml
var OpenAPI []byte
