//go:build e2e

package tierd_test

import (
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/s3fault"
)

// TestStackCredentialsAreRandom shows that MinIO in the stack does not take
// the credentials every run used to share, but does take the run's own
// (which tierd and the direct client use).
func TestStackCredentialsAreRandom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	accessKey, secretKey := stack.S3Credentials()
	require.GreaterOrEqual(t, len(accessKey), 3)
	require.GreaterOrEqual(t, len(secretKey), 8)

	// The credentials every stack had before they were drawn per run.
	fixed := [][2]string{{"tierchaos", "tierchaos-secret-key"}, {"minioadmin", "minioadmin"}}
	for _, creds := range fixed {
		c, err := minio.New(stack.MinIOEndpoint(), &minio.Options{
			Creds: credentials.NewStaticV4(creds[0], creds[1], ""), MaxRetries: 1,
		})
		require.NoError(t, err)
		_, err = c.ListBuckets(ctx)
		require.Error(t, err, "MinIO accepts the fixed credentials %s", creds[0])
		require.Equal(t, "InvalidAccessKeyId", minio.ToErrorResponse(err).Code, "%v", err)
	}

	own, err := minio.New(stack.MinIOEndpoint(), &minio.Options{
		Creds: credentials.NewStaticV4(accessKey, secretKey, ""), MaxRetries: 1,
	})
	require.NoError(t, err)
	_, err = own.ListBuckets(ctx)
	require.NoError(t, err, "the run's own credentials")
}

// TestS3FaultControlNeedsToken: the deployed fault layer's control API
// refuses a client without the run's token (401 unauthorized) and changes
// nothing for it, while the stack's own client gets through.
func TestS3FaultControlNeedsToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack.NewCase(t)
	for name, opts := range map[string][]s3fault.ClientOption{
		"no token":    nil,
		"wrong token": {s3fault.WithToken("not-the-token-of-this-run")},
	} {
		t.Run(name, func(t *testing.T) {
			anon, err := s3fault.NewClient(stack.S3FaultControlURL, opts...)
			require.NoError(t, err)
			_, err = anon.Health(ctx)
			require.ErrorIs(t, err, s3fault.ErrUnauthorized)
			_, err = anon.AddRule(ctx, s3fault.Rule{Trigger: s3fault.Always(), Action: s3fault.InternalError()})
			require.ErrorIs(t, err, s3fault.ErrUnauthorized)
			var apiErr *s3fault.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, 401, apiErr.StatusCode)
		})
	}
	rules, err := stack.S3Faults.Rules(ctx)
	require.NoError(t, err, "the stack's client has the token")
	require.Empty(t, rules, "the refused client added no rule")
}
