// Package httpapi is the broker's HTTP front-end (fasthttp): JSON for
// people and curl, and the binary batch format for the SDK. Each endpoint
// is a row of the route table (routes.go: method, path pattern, whether
// only the leader serves it) and a thin adapter that decodes the request,
// calls one method of the protocol-neutral core (package service) and
// encodes its result or error. docs/api.md documents every endpoint.
//
// Error bodies are wire.ErrorBody; the HTTP status follows from the stable
// code (statusOf), so another front-end maps the same codes its own way.
package httpapi
