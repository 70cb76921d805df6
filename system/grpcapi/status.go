// Package grpcapi holds what tierd's gRPC server and client share beside
// the generated code (package tierdv1): the conversions between the api
// types and the protobuf messages, and the table from the stable error
// codes to gRPC status codes with the google.rpc.ErrorInfo detail that
// carries the code.
package grpcapi

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tierchaos/tierchaos/system/api"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail of every
// tierd error status; its reason is the stable error code (api.Code*).
const ErrorDomain = "tierd"

// statusCodes maps every stable error code to its gRPC status code.
var statusCodes = map[string]codes.Code{
	api.CodeInvalidArgument:      codes.InvalidArgument,
	api.CodeNotFound:             codes.NotFound,
	api.CodeAlreadyExists:        codes.AlreadyExists,
	api.CodeTransitionInProgress: codes.Aborted,
	api.CodePayloadTooLarge:      codes.ResourceExhausted,
	api.CodeQuotaExceeded:        codes.ResourceExhausted,
	api.CodeStorageUnavailable:   codes.Unavailable,
	api.CodeBucketNotFound:       codes.FailedPrecondition,
	api.CodeInsufficientStorage:  codes.ResourceExhausted,
	api.CodeDataCorrupted:        codes.DataLoss,
	api.CodeInternal:             codes.Internal,
	api.CodeUnimplemented:        codes.Unimplemented,
	api.CodeUnauthenticated:      codes.Unauthenticated,
	api.CodeMethodNotAllowed:     codes.Unimplemented,
	api.CodeUnsupportedMediaType: codes.InvalidArgument,
	api.CodeOverloaded:           codes.Unavailable,
}

// StatusCode returns the gRPC status code of a stable error code
// (codes.Internal for an unknown one).
func StatusCode(code string) codes.Code {
	if c, ok := statusCodes[code]; ok {
		return c
	}
	return codes.Internal
}

// Status builds the status of an error answer: the code's gRPC status
// code, msg, and an ErrorInfo detail with reason code and domain
// ErrorDomain.
func Status(code, msg string) *status.Status {
	st := status.New(StatusCode(code), msg)
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: code, Domain: ErrorDomain})
	if err != nil {
		// Only a detail that cannot be marshalled fails; ErrorInfo always can.
		return st
	}
	return withInfo
}

// ReasonOf returns the stable error code of a gRPC error: the reason of
// its ErrorInfo detail of domain ErrorDomain, or "" when it has none (a
// status from the gRPC library itself, such as a message over the size
// limit or a deadline).
func ReasonOf(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return ""
	}
	for _, d := range se.GRPCStatus().Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}
