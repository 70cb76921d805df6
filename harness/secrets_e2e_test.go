//go:build e2e

package harness_test

import (
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
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
