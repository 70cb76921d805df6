package stack

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/tierchaos/tierchaos/harness/images"
	"github.com/tierchaos/tierchaos/harness/netfault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
)

// Fixed names inside the stack's network.
const (
	minioAlias     = "minio"
	toxiproxyAlias = "toxiproxy"
	minioPort      = "9000/tcp"
	toxiAPIPort    = "8474/tcp"
	s3ProxyPort    = "8666/tcp"
	s3faultAlias   = "s3fault"
	s3faultS3Port  = "9000/tcp"
	s3faultAPIPort = "9100/tcp"
)

func (s *Stack) startMinIO(ctx context.Context) error {
	req := testcontainers.ContainerRequest{
		Image: s.Images.MinIO,
		// MinIO's certificates folder defaults to $HOME/.minio/certs; a
		// non-root user of a FROM scratch image has no home.
		Cmd: []string{"server", "/data", "--address", ":9000", "--console-address", ":9001", "--quiet",
			"--certs-dir", "/tmp/certs"},
		Env:          map[string]string{"MINIO_ROOT_USER": s.secrets.accessKey, "MINIO_ROOT_PASSWORD": s.secrets.secretKey, "MINIO_BROWSER": "off"},
		ExposedPorts: []string{minioPort},
		// Not root, even for an official image that would run as root.
		User:  images.RunUser,
		Tmpfs: map[string]string{"/data": "rw," + tmpfsOwner, "/tmp": "rw," + tmpfsOwner},
		// "ready" (unlike "live") answers once MinIO serves S3 requests.
		WaitingFor: wait.ForHTTP("/minio/health/ready").WithPort(minioPort).WithStartupTimeout(time.Minute).
			WithPollInterval(50 * time.Millisecond),
	}
	if s.minioVolume != "" {
		// The sidecar keeps the volume, and its objects, when MinIO's
		// container stops; a container tmpfs would be lost.
		req.Tmpfs = map[string]string{"/tmp": "rw," + tmpfsOwner}
		req.Mounts = testcontainers.Mounts(testcontainers.VolumeMount(s.minioVolume, "/data"))
	}
	c, err := s.run(ctx, minioAlias, req)
	if err != nil {
		return err
	}
	if s.S3Endpoint, err = c.PortEndpoint(ctx, minioPort, ""); err != nil {
		return fmt.Errorf("stack: minio endpoint: %w", err)
	}
	s.mu.Lock()
	s.minioAddr = s.S3Endpoint
	s.mu.Unlock()
	s.s3Transport = s.minioTransport()
	s.S3, err = minio.New(s.S3Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(s.secrets.accessKey, s.secrets.secretKey, ""),
		MaxRetries: 1,
		Transport:  s.s3Transport,
	})
	if err != nil {
		return fmt.Errorf("stack: minio client: %w", err)
	}
	// MinIO can still answer XMinioServerNotInitialized for a moment after
	// "ready": retry within the start deadline.
	for {
		err := s.S3.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{})
		if err == nil {
			return nil
		}
		if !minioNotInitialized(err) {
			return fmt.Errorf("stack: make bucket: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: make bucket: %w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Stack) startS3Fault(ctx context.Context) error {
	c, err := s.run(ctx, s3faultAlias, testcontainers.ContainerRequest{
		Image: s.Images.S3Fault,
		Env: map[string]string{
			"S3FAULT_UPSTREAM": "http://" + toxiproxyAlias + ":" + strings.TrimSuffix(s3ProxyPort, "/tcp"),
			"S3FAULT_SEED":     strconv.FormatUint(s.seed, 10),
			// For actions that sign their own requests to the upstream.
			"S3FAULT_ACCESS_KEY": s.secrets.accessKey,
			"S3FAULT_SECRET_KEY": s.secrets.secretKey,
			// The control API answers only requests with this token.
			"S3FAULT_CONTROL_TOKEN": s.secrets.s3faultToken,
		},
		ExposedPorts: []string{s3faultS3Port, s3faultAPIPort},
		WaitingFor: wait.ForHTTP(s3fault.PathHealth).WithPort(s3faultAPIPort).WithStartupTimeout(time.Minute).
			WithHeaders(map[string]string{"Authorization": "Bearer " + s.secrets.s3faultToken}),
	})
	if err != nil {
		return err
	}
	if s.S3FaultEndpoint, err = c.PortEndpoint(ctx, s3faultS3Port, ""); err != nil {
		return fmt.Errorf("stack: s3fault endpoint: %w", err)
	}
	api, err := c.PortEndpoint(ctx, s3faultAPIPort, "http")
	if err != nil {
		return fmt.Errorf("stack: s3fault control endpoint: %w", err)
	}
	s.S3FaultControlURL = api
	if s.S3Faults, err = s3fault.NewClient(api, s3fault.WithToken(s.secrets.s3faultToken)); err != nil {
		return fmt.Errorf("stack: s3fault client: %w", err)
	}
	return nil
}

func (s *Stack) startToxiproxy(ctx context.Context) error {
	c, err := s.run(ctx, toxiproxyAlias, testcontainers.ContainerRequest{
		Image:        s.Images.Toxiproxy,
		User:         images.RunUser, // also for an official image
		ExposedPorts: []string{toxiAPIPort, s3ProxyPort},
		WaitingFor:   wait.ForHTTP("/version").WithPort(toxiAPIPort).WithStartupTimeout(time.Minute),
	})
	if err != nil {
		return err
	}
	api, err := c.PortEndpoint(ctx, toxiAPIPort, "http")
	if err != nil {
		return fmt.Errorf("stack: toxiproxy endpoint: %w", err)
	}
	s.ToxiproxyURL = api
	s.Toxiproxy = toxiproxy.NewClient(api)
	listen := "0.0.0.0:" + strings.TrimSuffix(s3ProxyPort, "/tcp")
	if s.S3Proxy, err = s.Toxiproxy.CreateProxy(S3ProxyName, listen, minioAlias+":9000"); err != nil {
		return fmt.Errorf("stack: create proxy: %w", err)
	}
	if s.Net, err = netfault.New(s.S3Proxy, netfault.WithLogger(s.log)); err != nil {
		return fmt.Errorf("stack: network faults: %w", err)
	}
	if s.S3ProxyEndpoint, err = c.PortEndpoint(ctx, s3ProxyPort, ""); err != nil {
		return fmt.Errorf("stack: proxy endpoint: %w", err)
	}
	return nil
}
