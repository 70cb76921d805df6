package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/testcontainers/testcontainers-go"
)

// ErrMinIONotRestartable is returned by the MinIO process controls when the
// stack was started without Options.RestartableMinIO: MinIO's data is then
// on a container tmpfs, and a restart would lose every object.
var ErrMinIONotRestartable = errors.New("stack: MinIO is not restartable (start the stack with Options.RestartableMinIO)")

// minioTransport returns the transport of Stack.S3: it always dials MinIO's
// current published endpoint, so the client keeps working when a restart
// publishes MinIO on another host port. The request's Host header (which
// SigV4 signs) stays S3Endpoint.
func (s *Stack) minioTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.MinIOEndpoint())
		},
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		DisableCompression:    true,
	}
}

// MinIOEndpoint returns MinIO's current host:port on the host. It differs
// from S3Endpoint (the endpoint at start) only after RestartMinIO or
// StartMinIO published MinIO on another port; Stack.S3 follows it by
// itself.
func (s *Stack) MinIOEndpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.minioAddr == "" {
		return s.S3Endpoint
	}
	return s.minioAddr
}

func (s *Stack) minioContainer() (testcontainers.Container, error) {
	if !s.restartableMinIO {
		return nil, ErrMinIONotRestartable
	}
	s.mu.Lock()
	c := s.containers[minioAlias]
	s.mu.Unlock()
	if c == nil {
		return nil, errors.New("stack: MinIO container not started")
	}
	return c, nil
}

// StopMinIO stops MinIO gracefully (SIGTERM, then SIGKILL after 10 s).
// Its objects stay on its tmpfs volume. It needs Options.RestartableMinIO
// (else ErrMinIONotRestartable).
func (s *Stack) StopMinIO(ctx context.Context) error {
	c, err := s.minioContainer()
	if err != nil {
		return err
	}
	timeout := 10 * time.Second
	if err := c.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stack: stop minio: %w", err)
	}
	s.s3Transport.CloseIdleConnections()
	return nil
}

// StartMinIO starts a stopped MinIO on the same data and waits until it
// serves S3 requests (/minio/health/ready, then the bucket answers).
// Starting a running MinIO does nothing. It needs Options.RestartableMinIO.
func (s *Stack) StartMinIO(ctx context.Context) error {
	c, err := s.minioContainer()
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil { // runs the /minio/health/ready wait again
		return fmt.Errorf("stack: start minio: %w", err)
	}
	ep, err := c.PortEndpoint(ctx, minioPort, "")
	if err != nil {
		return fmt.Errorf("stack: minio endpoint: %w", err)
	}
	s.mu.Lock()
	s.minioAddr = ep
	s.mu.Unlock()
	s.s3Transport.CloseIdleConnections()
	return s.waitBucket(ctx)
}

// RestartMinIO stops MinIO and starts it again on the same data.
func (s *Stack) RestartMinIO(ctx context.Context) error {
	if err := s.StopMinIO(ctx); err != nil {
		return err
	}
	return s.StartMinIO(ctx)
}

// minioRunning reports whether MinIO's container runs.
func (s *Stack) minioRunning(ctx context.Context) (bool, error) {
	c, err := s.minioContainer()
	if err != nil {
		return false, err
	}
	st, err := c.State(ctx)
	if err != nil {
		return false, fmt.Errorf("stack: minio state: %w", err)
	}
	return st.Running, nil
}

// waitBucket waits until MinIO answers for the bucket: it can still answer
// XMinioServerNotInitialized for a moment after "ready".
func (s *Stack) waitBucket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := s.S3.BucketExists(ctx, s.Bucket)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: minio bucket after start: %w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// minioNotInitialized reports MinIO's "not initialized yet" answer.
func minioNotInitialized(err error) bool {
	return minio.ToErrorResponse(err).Code == "XMinioServerNotInitialized"
}
