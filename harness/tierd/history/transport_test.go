package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/internal/tierdtest"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcapi"
	"github.com/tierchaos/tierchaos/system/grpcapi/tierdv1"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// answer is one way an insert can end, given over REST and over gRPC.
type answer struct {
	// name is the row's name and the collection the insert addresses.
	name string
	// rest writes the REST answer; grpc is the gRPC status (nil: the call
	// hangs until the client's deadline, over both transports).
	rest func(w http.ResponseWriter)
	grpc error
	// dead sends the call to a port where no tierd answers instead.
	dead bool
	want history.Outcome
	// code is the error code both transports must record.
	code string
}

// definiteCodes are the codes with which tierd promises no effect: every
// 4xx code and the rolled-back transitions (history.Classify). Written out
// here, not taken from the package, so that a change of the policy shows.
var definiteCodes = []string{
	api.CodeInvalidArgument, api.CodeNotFound, api.CodeAlreadyExists, api.CodeTransitionInProgress,
	api.CodePayloadTooLarge, api.CodeQuotaExceeded, api.CodeStorageUnavailable, api.CodeBucketNotFound,
	api.CodeInsufficientStorage, api.CodeDataCorrupted, api.CodeUnimplemented,
}

// answers: every stable code as tierd answers it, then answers that did not
// come from tierd's error mapping, then transport failures.
func answers(t *testing.T) []answer {
	t.Helper()
	var out []answer
	for _, code := range api.Codes() {
		want := history.Unknown
		if slices.Contains(definiteCodes, code) {
			want = history.Failed
		}
		out = append(out, answer{name: "code-" + strings.ReplaceAll(code, "_", "-"),
			rest: func(w http.ResponseWriter) { writeErr(w, code, "from the table") },
			grpc: grpcapi.Status(code, "from the table").Err(), want: want, code: code})
	}
	foreign := func(c codes.Code, code string) error {
		st, err := status.New(c, "foreign").WithDetails(&errdetails.ErrorInfo{Reason: code, Domain: grpcapi.ErrorDomain})
		require.NoError(t, err)
		return st.Err()
	}
	return append(out,
		answer{name: "not-found-with-a-foreign-status",
			rest: func(w http.ResponseWriter) { writeErrStatus(w, http.StatusInternalServerError, api.CodeNotFound) },
			grpc: foreign(codes.Internal, api.CodeNotFound), want: history.Unknown, code: api.CodeNotFound},
		// data_corrupted is HTTP 500 like internal; over gRPC only DataLoss
		// carries it.
		answer{name: "data-corrupted-with-internal-status",
			rest: func(w http.ResponseWriter) { writeErrStatus(w, http.StatusBadGateway, api.CodeDataCorrupted) },
			grpc: foreign(codes.Internal, api.CodeDataCorrupted), want: history.Unknown, code: api.CodeDataCorrupted},
		answer{name: "answer-without-a-code",
			rest: func(w http.ResponseWriter) { http.Error(w, "bad gateway", http.StatusBadGateway) },
			grpc: status.Error(codes.Unavailable, "no ErrorInfo"), want: history.Unknown},
		answer{name: "storage-unavailable-without-a-code",
			rest: func(w http.ResponseWriter) { http.Error(w, "unavailable", http.StatusServiceUnavailable) },
			grpc: status.Error(codes.Unavailable, "no ErrorInfo"), want: history.Unknown},
		// The gRPC library refuses a message over the size limit without
		// an ErrorInfo; the client names it payload_too_large, as tierd's
		// REST body limit does.
		answer{name: "message-over-the-size-limit",
			rest: func(w http.ResponseWriter) { writeErr(w, api.CodePayloadTooLarge, "too large") },
			grpc: status.Error(codes.ResourceExhausted, "grpc: received message larger than max"),
			want: history.Failed, code: api.CodePayloadTooLarge},
		answer{name: "deadline", want: history.Unknown},
		answer{name: "connection-reset", dead: true, want: history.Unknown},
	)
}

func writeErrStatus(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: "foreign"}})
}

// answeringTierd answers inserts by the collection name, with the rows'
// answers, over both transports.
type answeringTierd struct {
	tierdv1.UnimplementedTierdServer
	rows map[string]answer
	stop chan struct{}
}

func (a *answeringTierd) Insert(ctx context.Context, req *tierdv1.InsertRequest) (*tierdv1.InsertResponse, error) {
	r := a.rows[req.GetName()]
	if r.grpc == nil {
		select {
		case <-ctx.Done():
		case <-a.stop:
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return nil, r.grpc
}

func (a *answeringTierd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	row := a.rows[r.PathValue("name")]
	if row.rest == nil {
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-a.stop:
		}
		return
	}
	row.rest(w)
}

// resetListener accepts connections and resets them at once: a server that
// goes away under its clients.
func resetListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// transportClients returns, per transport, the client of the answering
// fake and the client of a port that resets every connection.
func transportClients(t *testing.T, rows []answer) map[string][2]client.API {
	t.Helper()
	a := &answeringTierd{rows: map[string]answer{}, stop: make(chan struct{})}
	for _, r := range rows {
		a.rows[r.name] = r
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/collections/{name}/vectors", a)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	tierdv1.RegisterTierdServer(gs, a)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	t.Cleanup(func() { close(a.stop) }) // runs first: releases hanging calls

	reset := resetListener(t)
	dial := func(addr string) client.API {
		gc, err := grpcclient.Dial(addr)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, gc.Close()) })
		return gc
	}
	return map[string][2]client.API{
		"rest": {client.New(hs.URL), client.New("http://" + reset)},
		"grpc": {dial(ln.Addr().String()), dial(reset)},
	}
}

// recordAnswers sends one insert per row over each transport through a
// recording client with classify, and returns the recorded operations by
// transport, in row order.
func recordAnswers(t *testing.T, rows []answer, classify func(int, string, error) history.Outcome) map[string][]history.Op {
	t.Helper()
	out := map[string][]history.Op{}
	for transport, cs := range transportClients(t, rows) {
		rec := history.NewRecorder()
		live := history.NewRecordingClient(cs[0], rec, history.WithClassifier(classify))
		dead := history.NewRecordingClient(cs[1], rec, history.WithClassifier(classify))
		for _, r := range rows {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rc := live
			if r.dead {
				rc = dead
			}
			if r.rest == nil && !r.dead {
				cancel()
				ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
			}
			_, err := rc.Insert(ctx, r.name, []api.Vector{{ID: "a", Values: []float32{1}}})
			cancel()
			require.Error(t, err, "%s over %s", r.name, transport)
		}
		out[transport] = rec.Ops()
	}
	return out
}

// disagreements lists every recorded operation whose outcome or code is not
// its row's, and every row whose status differs between the transports
// where tierd's mapping gives it one.
func disagreements(rows []answer, got map[string][]history.Op) []string {
	var out []string
	for i, r := range rows {
		rest, grpcOp := got["rest"][i], got["grpc"][i]
		for transport, op := range map[string]history.Op{"rest": rest, "grpc": grpcOp} {
			if op.Outcome != r.want || op.Code != r.code {
				out = append(out, fmt.Sprintf("%s over %s: %s %q, want %s %q (%s)", r.name, transport, op.Outcome, op.Code, r.want, r.code, op.Error))
			}
		}
		if r.want == history.Failed && (rest.Status != grpcOp.Status || rest.Status != api.HTTPStatus(r.code)) {
			out = append(out, fmt.Sprintf("%s: status %d over REST, %d over gRPC, want %d", r.name, rest.Status, grpcOp.Status, api.HTTPStatus(r.code)))
		}
	}
	slices.Sort(out)
	return out
}

// TestOutcomesAgreeOverBothTransports: every stable code, every answer
// that did not come from tierd's mapping and every transport failure
// classifies the same over REST and over gRPC, and as the table says.
func TestOutcomesAgreeOverBothTransports(t *testing.T) {
	rows := answers(t)
	got := recordAnswers(t, rows, history.Classify)
	assert.Empty(t, disagreements(rows, got))
	for transport, ops := range got {
		require.Len(t, ops, len(rows), transport)
	}
	// What the transport failures left in the history.
	last := len(rows) - 1
	assert.Contains(t, got["grpc"][last-1].Error, "DeadlineExceeded")
	assert.Contains(t, got["grpc"][last].Error, "Unavailable")
	assert.Zero(t, got["grpc"][last].Status)
	assert.Zero(t, got["rest"][last].Status)
}

// TestOutcomeTableCatchesMisclassification is the self-test of the table
// above: classifiers that get one class of answers wrong are caught, with
// the rows they get wrong named.
func TestOutcomeTableCatchesMisclassification(t *testing.T) {
	rows := answers(t)
	tests := []struct {
		name     string
		classify func(status int, code string, err error) history.Outcome
		caught   []string // rows that must be reported
	}{
		{"trusts a code whatever its status", func(status int, code string, err error) history.Outcome {
			if slices.Contains(definiteCodes, code) {
				return history.Failed
			}
			return history.Classify(status, code, err)
		}, []string{"not-found-with-a-foreign-status over grpc", "not-found-with-a-foreign-status over rest",
			"data-corrupted-with-internal-status over grpc"}},
		{"takes internal for a rollback", func(status int, code string, err error) history.Outcome {
			if code == api.CodeInternal {
				return history.Failed
			}
			return history.Classify(status, code, err)
		}, []string{"code-internal over grpc", "code-internal over rest"}},
		{"takes an unanswered call for a refusal", func(status int, code string, err error) history.Outcome {
			if status == 0 && code == "" {
				return history.Failed
			}
			return history.Classify(status, code, err)
		}, []string{"deadline over grpc", "deadline over rest", "connection-reset over grpc", "connection-reset over rest",
			"answer-without-a-code over grpc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found := strings.Join(disagreements(rows, recordAnswers(t, rows, tt.classify)), "\n")
			for _, c := range tt.caught {
				assert.Contains(t, found, c+":")
			}
		})
	}
}

// TestAnswerOf: the status and code a call's error gives the classifier.
func TestAnswerOf(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"REST answer", &client.Error{StatusCode: 409, Code: api.CodeTransitionInProgress}, 409, api.CodeTransitionInProgress},
		{"REST answer without a code", &client.Error{StatusCode: 502}, 502, ""},
		{"gRPC status of tierd", &grpcclient.Error{Status: codes.Aborted, Code: api.CodeTransitionInProgress}, 409, api.CodeTransitionInProgress},
		{"gRPC status shared by three codes", &grpcclient.Error{Status: codes.ResourceExhausted, Code: api.CodeInsufficientStorage}, 507, api.CodeInsufficientStorage},
		{"gRPC code with a foreign status", &grpcclient.Error{Status: codes.Unavailable, Code: api.CodeQuotaExceeded}, 0, api.CodeQuotaExceeded},
		{"gRPC status without a code", &grpcclient.Error{Status: codes.Unavailable}, 0, ""},
		{"wrapped", fmt.Errorf("x: %w", &grpcclient.Error{Status: codes.NotFound, Code: api.CodeNotFound}), 404, api.CodeNotFound},
		{"transport", context.DeadlineExceeded, 0, ""},
		{"none", nil, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := history.AnswerOf(tt.err)
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.code, code)
		})
	}
}

// TestRecordingOverBothTransports runs one script against a real tierd
// over REST and over gRPC: the two histories agree in kinds, outcomes,
// statuses, codes and outputs, and both pass the checkers.
func TestRecordingOverBothTransports(t *testing.T) {
	td := tierdtest.Start(t, nil)
	gc, err := grpcclient.Dial(td.GRPCAddr)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, gc.Close()) })
	type summary struct {
		Kind    history.Kind
		Outcome history.Outcome
		Status  int
		Code    string
		Tier    api.Tier
		Count   int
		Hits    int
	}
	histories := map[string][]summary{}
	for transport, c := range map[string]client.API{"rest": client.New(td.URL), "grpc": gc} {
		ctx := context.Background()
		rec := history.NewRecorder()
		rc := history.NewRecordingClient(c, rec)
		name := transport + "-c"
		_, err := rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricL2})
		require.NoError(t, err)
		_, err = rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricL2})
		require.Equal(t, api.CodeAlreadyExists, client.CodeOf(err))
		_, err = rc.Insert(ctx, name, []api.Vector{{ID: "a", Values: []float32{1, 2}}, {ID: "b", Values: []float32{3, 4}}})
		require.NoError(t, err)
		_, err = rc.Insert(ctx, name, []api.Vector{{ID: "c", Values: []float32{1}}})
		require.Equal(t, api.CodeInvalidArgument, client.CodeOf(err))
		_, err = rc.Search(ctx, name, []float32{1, 2}, 5)
		require.NoError(t, err)
		snap, err := rc.CreateSnapshot(ctx, name)
		require.NoError(t, err)
		_, err = rc.SetTier(ctx, name, api.TierCold)
		require.NoError(t, err)
		_, err = rc.GetCollection(ctx, name)
		require.NoError(t, err)
		_, err = rc.Insert(ctx, name, []api.Vector{{ID: "c", Values: []float32{5, 6}}})
		require.NoError(t, err)
		_, err = rc.Restore(ctx, name, snap.ID)
		require.NoError(t, err)
		_, err = rc.Restore(ctx, name, "no-such-snapshot")
		require.Error(t, err)
		_, err = rc.ListVectors(ctx, name, "", 1)
		require.NoError(t, err)
		_, err = rc.ListSnapshots(ctx, name)
		require.NoError(t, err)
		_, err = rc.GetCollection(ctx, transport+"-missing")
		require.Equal(t, api.CodeNotFound, client.CodeOf(err))

		final, err := rc.ReadFinal(ctx)
		require.NoError(t, err)
		assert.Len(t, final.Collections[name].Vectors, 2, "the restore brought back a and b only")
		assert.True(t, check.All(t, rec.Ops(), final, check.Config{}), transport)
		for _, op := range rec.Ops() {
			histories[transport] = append(histories[transport], summary{op.Kind, op.Outcome, op.Status, op.Code, op.Tier, op.Count, len(op.Results)})
		}
	}
	require.NotEmpty(t, histories["rest"])
	assert.Equal(t, histories["rest"], histories["grpc"])
}
