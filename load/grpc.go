package load

import (
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
)

// GRPCStatusError is the error of a gRPC operation that ended with a status
// carrying no stable code of the server: the gRPC library's own statuses,
// such as Unavailable for a refused or reset connection. Its code is
// "grpc_<status>" in snake case ("grpc_unavailable"), except that
// DeadlineExceeded and Canceled count as CodeTimeout and CodeCanceled, as
// an HTTP operation's deadline and cancellation do.
type GRPCStatusError struct {
	Status codes.Code
}

func (e *GRPCStatusError) Error() string { return "grpc status " + e.Status.String() }

// ErrorCode returns the error's stable code.
func (e *GRPCStatusError) ErrorCode() string {
	switch e.Status {
	case codes.DeadlineExceeded:
		return CodeTimeout
	case codes.Canceled:
		return CodeCanceled
	}
	var b strings.Builder
	b.WriteString("grpc_")
	for i, r := range e.Status.String() {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
