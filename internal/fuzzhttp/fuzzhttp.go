// Package fuzzhttp holds what fuzz targets that write raw HTTP requests share.
package fuzzhttp

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// Servable reports whether net/http's server would hand r, as
// http.ReadRequest read it, to a handler: it refuses other versions, and a
// host, header names and values that are not valid, which ReadRequest
// takes.
func Servable(r *http.Request) bool {
	if r.ProtoMajor != 1 || !httpguts.ValidHostHeader(r.Host) {
		return false
	}
	for k, vs := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}
