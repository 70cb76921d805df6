package history

import (
	"errors"
	"net/http"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcapi"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// definite lists the error codes with which tierd promises that an
// operation had no effect. The 4xx codes are rejections before any change;
// storage_unavailable and bucket_not_found (503), insufficient_storage (507) and data_corrupted
// (500) are failed transitions or promotions that tierd's design requires to
// roll back completely ("any failure before the flip leaves the collection
// fully usable in its old tier"), so a checker that treats them as "not
// applied" holds tierd to that promise.
var definite = map[string]bool{
	api.CodeInvalidArgument:      true,
	api.CodeNotFound:             true,
	api.CodeAlreadyExists:        true,
	api.CodeTransitionInProgress: true,
	api.CodePayloadTooLarge:      true,
	api.CodeQuotaExceeded:        true,
	api.CodeStorageUnavailable:   true,
	api.CodeBucketNotFound:       true,
	api.CodeInsufficientStorage:  true,
	api.CodeDataCorrupted:        true,
	api.CodeUnimplemented:        true,
}

// Classify decides the outcome of a call from its error: nil is OK; an
// answer from tierd whose status matches a code that promises no effect
// (see above) is Failed; everything else is Unknown: timeouts, cancelled
// contexts, transport errors, answers without a tierd error body (status 0
// or a code tierd does not define, e.g. a proxy's 502), and internal (500),
// which tierd may return after a partial effect. status is the HTTP status
// (0 if no answer arrived) and code tierd's error code ("" if none).
func Classify(status int, code string, err error) Outcome {
	if err == nil {
		return OK
	}
	if status == 0 || !definite[code] {
		return Unknown
	}
	if api.HTTPStatus(code) != status {
		// A code paired with an unexpected status did not come from
		// tierd's error mapping (or the mapping changed): do not trust it.
		return Unknown
	}
	if status >= http.StatusBadRequest && status < 600 {
		return Failed
	}
	return Unknown
}

// AnswerOf returns the HTTP status and tierd's error code of a call's
// error, the inputs of Classify, for either transport:
//
//   - a REST answer (*client.Error): its status and the code of its body;
//   - a gRPC status (*grpcclient.Error) whose code (the reason of its
//     google.rpc.ErrorInfo) comes with the gRPC status code tierd's mapping
//     gives it (grpcapi.StatusCode): the HTTP status of that code
//     (api.HTTPStatus), so that it classifies exactly as the same answer
//     over REST;
//   - a gRPC status whose code comes with another status code: status 0
//     and the code, which Classify judges unknown (as a REST code with a
//     status it never has), since the pair did not come from tierd's
//     mapping;
//   - a gRPC status without a code (the gRPC library's own: Unavailable
//     for a refused or reset connection, DeadlineExceeded, Canceled) and
//     any other error (a REST transport failure, a context error): 0 and
//     "", no answer from tierd.
func AnswerOf(err error) (status int, code string) {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.StatusCode, ce.Code
	}
	var ge *grpcclient.Error
	if errors.As(err, &ge) && ge.Code != "" {
		if grpcapi.StatusCode(ge.Code) != ge.Status {
			return 0, ge.Code
		}
		return api.HTTPStatus(ge.Code), ge.Code
	}
	return 0, ""
}
