//go:build e2e

package tierd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
)

// TestS3Faults proves every S3 fault of the deployed fault layer is in
// effect at an S3 client on tierd's path (through the layer, Toxiproxy and
// MinIO) and gone once its rule is used up, and that the layer's counters
// match what was injected.
func TestS3Faults(t *testing.T) {
	const size = 64 << 10
	cases := []struct {
		name string
		rule s3fault.Rule
		// observe performs the faulted operation and asserts its effect.
		observe func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte)
	}{
		{
			name: "slow-down-503",
			rule: s3fault.Rule{Ops: []s3fault.Op{s3fault.OpPutObject}, Trigger: s3fault.Next(1), Action: s3fault.SlowDown(2 * time.Second)},
			observe: func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte) {
				err := put(ctx, s3, key, body)
				require.Error(t, err)
				resp := minio.ToErrorResponse(err)
				require.Equal(t, "SlowDown", resp.Code, "S3 error code: %v", err)
				require.Equal(t, 503, resp.StatusCode)
				requireAbsent(ctx, t, key)
			},
		},
		{
			name: "internal-error-500",
			rule: s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGetObject}, Trigger: s3fault.Next(1), Action: s3fault.InternalError()},
			observe: func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte) {
				require.NoError(t, put(ctx, s3, key, body))
				_, err := get(ctx, s3, key)
				require.Error(t, err)
				require.Equal(t, "InternalError", minio.ToErrorResponse(err).Code, "S3 error code: %v", err)
			},
		},
		{
			name: "delay",
			rule: s3fault.Rule{Ops: []s3fault.Op{s3fault.OpHeadObject}, Trigger: s3fault.Next(1), Action: s3fault.Delay(400*time.Millisecond, 0)},
			observe: func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte) {
				require.NoError(t, put(ctx, s3, key, body))
				start := time.Now()
				_, err := s3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
				require.NoError(t, err)
				require.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "the delay was in effect")
			},
		},
		{
			name: "truncated-get-body",
			rule: s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGetObject}, Trigger: s3fault.Next(1), Action: s3fault.TruncateBody(1000)},
			observe: func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte) {
				require.NoError(t, put(ctx, s3, key, body))
				got, err := get(ctx, s3, key)
				require.Error(t, err, "a body cut short of its Content-Length is an error at the client")
				require.Less(t, len(got), len(body))
			},
		},
		{
			name: "bit-flipped-get-body",
			rule: s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGetObject}, Trigger: s3fault.Next(1), Action: s3fault.FlipBits(3)},
			observe: func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte) {
				require.NoError(t, put(ctx, s3, key, body))
				got, err := get(ctx, s3, key)
				require.NoError(t, err, "bit flips keep the length: only a checksum tells")
				require.Len(t, got, len(body))
				require.NotEqual(t, body, got, "the body was corrupted in flight")
				direct, err := get(ctx, stack.S3, key)
				require.NoError(t, err)
				require.Equal(t, body, direct, "the stored object is intact")
			},
		},
		{
			name: "misdirected-get",
			rule: s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGetObject}, Trigger: s3fault.Next(1), Action: s3fault.Misdirect()},
			observe: func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte) {
				sibling := make([]byte, size/2)
				_, _ = rand.Read(sibling)
				siblingKey := key + ".sibling"
				require.NoError(t, put(ctx, s3, siblingKey, sibling))
				t.Cleanup(func() {
					_ = stack.S3.RemoveObject(context.Background(), tierd.Bucket, siblingKey, minio.RemoveObjectOptions{})
				})
				require.NoError(t, put(ctx, s3, key, body))
				got, err := get(ctx, s3, key)
				require.NoError(t, err, "a misdirected GET is a complete, well-formed answer")
				require.Equal(t, sibling, got, "the other object of the collection was served")
				direct, err := get(ctx, stack.S3, key)
				require.NoError(t, err)
				require.Equal(t, body, direct, "the stored object is intact")
			},
		},
		{
			name: "put-cut-after-n-bytes",
			rule: s3fault.Rule{Ops: []s3fault.Op{s3fault.OpPutObject}, Trigger: s3fault.Next(1), Action: s3fault.CutRequestBody(10 << 10)},
			observe: func(ctx context.Context, t *testing.T, s3 *minio.Client, key string, body []byte) {
				require.Error(t, put(ctx, s3, key, body), "the upload was cut")
				requireAbsent(ctx, t, key)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := stack.NewCase(t)
			accessKey, secretKey := stack.S3Credentials()
			s3, err := minio.New(stack.S3FaultEndpoint, &minio.Options{
				Creds: credentials.NewStaticV4(accessKey, secretKey, ""), MaxRetries: 1,
			})
			require.NoError(t, err)
			body := make([]byte, size)
			_, _ = rand.Read(body)
			key := "selftest/" + tc.name + "/" + c.Seed.Name

			id, err := stack.S3Faults.AddRule(ctx, tc.rule)
			if apiErr := (*s3fault.APIError)(nil); errors.As(err, &apiErr) &&
				apiErr.Code == s3fault.CodeActionNotApplicable && apiErr.Field == "action.kind" {
				t.Fatal("the stack started s3faultd without upstream credentials (S3FAULT_ACCESS_KEY, S3FAULT_SECRET_KEY): ", apiErr.Message)
			}
			require.NoError(t, err)
			tc.observe(ctx, t, s3, key, body)

			st, err := stack.S3Faults.Stats(ctx)
			require.NoError(t, err)
			rs, ok := st.Rule(id)
			require.True(t, ok)
			require.EqualValues(t, 1, rs.Fired, "exactly one injection counted")
			require.EqualValues(t, 1, st.Injected(tc.rule.Action.Kind))

			// The rule is used up: the same operations now succeed and round-trip.
			require.NoError(t, put(ctx, s3, key, body), "after the fault")
			got, err := get(ctx, s3, key)
			require.NoError(t, err, "after the fault")
			require.Equal(t, body, got)
			require.NoError(t, stack.S3.RemoveObject(ctx, tierd.Bucket, key, minio.RemoveObjectOptions{}))
		})
	}
}

func put(ctx context.Context, s3 *minio.Client, key string, body []byte) error {
	_, err := s3.PutObject(ctx, tierd.Bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{DisableMultipart: true})
	return err
}

func get(ctx context.Context, s3 *minio.Client, key string) ([]byte, error) {
	o, err := s3.GetObject(ctx, tierd.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func requireAbsent(ctx context.Context, t *testing.T, key string) {
	t.Helper()
	_, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
	require.Error(t, err, "no object %s in MinIO", key)
	require.Equal(t, "NoSuchKey", minio.ToErrorResponse(err).Code)
}
