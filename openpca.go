// Package openpca is the domain of OpenPCA, a private certificate authority
// that speaks the AWS Private CA API.
//
// It holds the API's vocabulary (types_gen.go, generated from the botocore
// model), the records the server keeps, the service and store interfaces, and
// the error codes every layer maps to. It imports no database, object store or
// wire code: those live in their own packages around it.
package openpca

//go:generate go run ./internal/apigen -domain . -wire ./awsjson
