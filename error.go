package openpca

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Error codes. Each is the name of the AWS exception a client receives.
const (
	CodeCertificateMismatch        = "CertificateMismatchException"
	CodeConcurrentModification     = "ConcurrentModificationException"
	CodeInvalidArgs                = "InvalidArgsException"
	CodeInvalidArn                 = "InvalidArnException"
	CodeInvalidNextToken           = "InvalidNextTokenException"
	CodeInvalidPolicy              = "InvalidPolicyException"
	CodeInvalidRequest             = "InvalidRequestException"
	CodeInvalidState               = "InvalidStateException"
	CodeInvalidTag                 = "InvalidTagException"
	CodeLimitExceeded              = "LimitExceededException"
	CodeMalformedCertificate       = "MalformedCertificateException"
	CodeMalformedCSR               = "MalformedCSRException"
	CodePermissionAlreadyExists    = "PermissionAlreadyExistsException"
	CodeRequestAlreadyProcessed    = "RequestAlreadyProcessedException"
	CodeRequestFailed              = "RequestFailedException"
	CodeRequestInProgress          = "RequestInProgressException"
	CodeResourceNotFound           = "ResourceNotFoundException"
	CodeTooManyTags                = "TooManyTagsException"
	CodeAccessDenied               = "AccessDeniedException"
	CodeNotImplemented             = "NotImplementedException"
	CodeInternalFailure            = "InternalFailure"
	CodeValidation                 = "ValidationException"
	CodeSerialization              = "SerializationException"
	CodeUnknownOperation           = "UnknownOperationException"
	CodeRequestEntityTooLarge      = "RequestEntityTooLargeException"
	CodeServiceUnavailable         = "ServiceUnavailableException"
	CodeThrottling                 = "ThrottlingException"
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
)

// Error is a failure a client should see, carrying the AWS error code it maps
// to and a message a person can act on. Any other error is internal.
type Error struct {
	Code    string
	Message string
	// Cause, if set, is what the operator's log says of the failure and
	// the client is not told: a dependency's error, which names its
	// address (a KMS endpoint, a token's library).
	Cause error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// ClientMessage is what a client may be told of err: an *Error's code and
// message, without its cause; of any other, that the server failed, for
// its text (an object store's address, a SQL error) is the operator's.
func ClientMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code + ": " + e.Message
	}
	return CodeInternalFailure + ": The server encountered an internal error; its log says why."
}

// CutText returns s cut to at most n bytes, and whether it was cut. It
// cuts before a UTF-8 sequence, not within one, and leaves the bytes
// before the cut as they are, UTF-8 or not: what an error quotes of the
// tables may be anything, and a %q of it should show what is there.
func CutText(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	// A character that s[n] is part of starts in the 3 bytes before it,
	// at the first byte back that may start one; what does not decode
	// there is bytes that are not UTF-8, cut as they come.
	for i := n - 1; i >= max(n-(utf8.UTFMax-1), 0); i-- {
		if utf8.RuneStart(s[i]) {
			if _, size := utf8.DecodeRuneInString(s[i:]); i+size > n {
				return s[:i], true
			}
			break
		}
	}
	return s[:n], true
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error is the code, the message and the cause, for the operator's log:
// a client is told ClientMessage.
func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Message + " (" + e.Cause.Error() + ")"
	}
	return e.Code + ": " + e.Message
}

// ErrorCode is the AWS error code of err, or CodeInternalFailure when err is
// not an *Error.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternalFailure
}

func notImplemented(op string) error {
	return Errorf(CodeNotImplemented, "%s is not implemented by this server", op)
}
