// Package harness starts the tierchaos test stack with Testcontainers: MinIO
// (data on tmpfs) behind Toxiproxy, and tierd reaching S3 only through the
// proxy, all on one labelled Docker network. It hands a test a tierd client,
// a direct S3 client that bypasses every fault, and the Toxiproxy proxy on
// tierd's S3 path; it cleans up without Ryuk (see package cleanup).
package harness

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/moby/moby/api/types/container"
	dockernet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/sync/errgroup"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/datavol"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/images"
	"github.com/tierchaos/tierchaos/harness/netfault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/internal/tmpfs"
	tierclient "github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/config"
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
	tierdAPIPort   = "8080/tcp"
	tierdDebugPort = "6060/tcp"
	tierdGRPCPort  = "9090/tcp"

	// S3ProxyName is the Toxiproxy proxy in front of MinIO on tierd's path.
	S3ProxyName = "s3"
	// Bucket is the bucket tierd stores its cold tier in.
	Bucket = "tierd"
)

// tmpfsOwner are the tmpfs mount options that give a tmpfs (a container's
// or a tmpfs volume's) to the user every container of the stack runs as.
var tmpfsOwner = fmt.Sprintf("uid=%d,gid=%d,mode=0755", images.RunUID, images.RunGID)

// Options configures Start.
type Options struct {
	// Logger receives the harness's own log lines; slog.Default when nil.
	Logger *slog.Logger
	// Progress receives image build progress; os.Stderr when nil.
	Progress io.Writer
	// TierdEnv adds or overrides environment variables of tierd.
	TierdEnv map[string]string
	// TierdDataTmpfs, when set (e.g. "4m", "256m"), puts tierd's data
	// directory on a tmpfs of that size, so that a test can fill it
	// (FillData, a real ENOSPC). Its content survives KillTierd,
	// StartTierd, RestartTierd and ReconfigureTierd. With tierd in a
	// container it is a Docker volume of the local driver with tmpfs
	// options, which the data sidecar keeps mounted; with tierd in the test
	// process it is a tmpfs that a helper child holds in a mount namespace
	// of its own (internal/tmpfs), which needs no root where user
	// namespaces are enabled (elsewhere, outside CI, a plain directory:
	// see DataTmpfs).
	TierdDataTmpfs string
	// RestartableMinIO puts MinIO's /data on a Docker tmpfs volume that
	// the data sidecar keeps mounted, instead of a container tmpfs, so that
	// objects survive StopMinIO, StartMinIO and RestartMinIO, which need it.
	RestartableMinIO bool
	// MinIODataTmpfs is the size of that volume; "1g" when empty.
	MinIODataTmpfs string
	// Seed seeds the S3 fault layer's probabilistic rules.
	Seed uint64
	// SUT is SUTContainer or SUTInProcess; from TIERCHAOS_SUT when empty,
	// else SUTContainer.
	SUT string
	// StartTimeout bounds the whole start; 2 minutes when zero (image builds
	// are done before and not counted).
	StartTimeout time.Duration
	// PowerLoss runs an in-process tierd on the power-loss layer
	// (system/fsutil/powerloss), so that CutPower can cut its power. It
	// has no effect with tierd in a container, where CutPower is refused.
	PowerLoss bool
}

// Stack is a running tierchaos stack.
type Stack struct {
	// Run identifies this run's Docker objects.
	Run cleanup.Run
	// Images are the image references the stack runs.
	Images images.Set

	// Tierd is a client of tierd's REST API, from the host, with the
	// run's tokens.
	Tierd *tierclient.Client
	// APIToken and AdminToken are tierd's bearer tokens for this run
	// (random, from crypto/rand); clients of tierd built outside the stack
	// (load driver, fixtures) pass them with tierclient.WithToken and
	// tierclient.WithAdminToken.
	APIToken, AdminToken string
	// Mode is how tierd runs: SUTContainer or SUTInProcess.
	Mode string
	// S3 is a direct MinIO client that bypasses Toxiproxy and any fault.
	// It always dials MinIO's current endpoint (MinIOEndpoint), so it keeps
	// working across RestartMinIO.
	S3 *minio.Client
	// S3Endpoint is MinIO's host:port on the host, direct, as published at
	// start; after a MinIO restart use MinIOEndpoint.
	S3Endpoint string
	// S3ProxyEndpoint is host:port of the Toxiproxy proxy in front of MinIO,
	// reachable from the host (host-side traffic through the same toxics).
	S3ProxyEndpoint string
	// S3Faults controls the S3-aware fault layer on tierd's S3 path (503
	// SlowDown, 500, truncated or bit-flipped bodies, cut uploads).
	S3Faults *s3fault.Client
	// S3FaultEndpoint is host:port of the S3 fault layer, from the host.
	S3FaultEndpoint string
	// S3FaultControlURL is the base URL of the fault layer's control API,
	// from the host. It answers only requests with the run's token, which
	// S3Faults sends.
	S3FaultControlURL string
	// ToxiproxyURL is the Toxiproxy API's base URL on the host.
	ToxiproxyURL string
	// Toxiproxy is the Toxiproxy API client.
	Toxiproxy *toxiproxy.Client
	// S3Proxy is the proxy on tierd's S3 path.
	S3Proxy *toxiproxy.Proxy
	// Net is the typed network fault API on S3Proxy (see harness/netfault).
	Net *netfault.Proxy

	// StartDuration is how long Start took once images existed.
	StartDuration time.Duration

	log        *slog.Logger
	docker     *testcontainers.DockerClient
	network    *testcontainers.DockerNetwork
	mu         sync.Mutex
	containers map[string]testcontainers.Container
	seed       uint64
	// sutMu guards sut: restarts replace it while traffic dials it.
	sutMu      sync.RWMutex
	sut        sut
	tierdExtra map[string]string
	// tierdBase is Options.TierdEnv: the settings ClearFaults gives tierd
	// back after a case reconfigured it.
	tierdBase map[string]string
	transport *http.Transport

	// dataTmpfs is Options.TierdDataTmpfs. volume is tierd's data volume
	// (tierd in a container); tierdDir its data directory (in process), a
	// tmpfs of tierdTmpfs or a temporary directory of the stack
	// (ownTierdDir); tmpfsErr says why it is not a tmpfs although one was
	// asked for.
	dataTmpfs   string
	volume      string
	tierdDir    string
	ownTierdDir bool
	tierdTmpfs  *tmpfs.FS
	tmpfsErr    error
	// dataVol is the data sidecar's client (nil without the sidecar).
	dataVol *datavol.Client

	// secrets are the run's random credentials (secrets.go).
	secrets secrets

	restartableMinIO bool
	minioVolume      string // MinIO's tmpfs volume (RestartableMinIO)
	minioAddr        string // MinIO's current host:port; guarded by mu
	s3Transport      *http.Transport
	defects          *defects
	powerLoss        bool
}

// Start ensures the images, removes leftovers of dead runs, and starts a
// stack owned by run. On error everything started is removed again.
func Start(ctx context.Context, run cleanup.Run, opts Options) (_ *Stack, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Progress == nil {
		opts.Progress = os.Stderr
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	mode := opts.SUT
	if mode == "" {
		mode = os.Getenv(EnvSUT)
	}
	if mode == "" {
		mode = SUTContainer
	}
	if mode != SUTContainer && mode != SUTInProcess {
		return nil, fmt.Errorf("harness: %s=%q: want %q or %q", EnvSUT, mode, SUTContainer, SUTInProcess)
	}
	if opts.RestartableMinIO && opts.MinIODataTmpfs == "" {
		opts.MinIODataTmpfs = minioTmpfsDefault
	}
	for name, size := range map[string]string{"TierdDataTmpfs": opts.TierdDataTmpfs, "MinIODataTmpfs": opts.MinIODataTmpfs} {
		if _, err := tmpfs.ParseSize(size); size != "" && err != nil {
			return nil, fmt.Errorf("harness: Options.%s: %w", name, err)
		}
	}
	sec, err := newSecrets()
	if err != nil {
		return nil, err
	}
	docker, err := dockerenv.Client(ctx)
	if err != nil {
		return nil, err
	}
	s := &Stack{
		secrets: sec,
		Run:     run, Mode: mode, log: opts.Logger, docker: docker, seed: opts.Seed, dataTmpfs: opts.TierdDataTmpfs,
		containers: map[string]testcontainers.Container{}, restartableMinIO: opts.RestartableMinIO,
		defects: &defects{log: opts.Logger}, powerLoss: opts.PowerLoss,
		APIToken: randomToken(), AdminToken: randomToken(),
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			err = errors.Join(err, s.Close(cctx))
		}
	}()
	if rep, err := cleanup.RemoveDead(ctx, docker); err != nil {
		opts.Logger.Warn("removing leftovers of dead runs", "err", err)
	} else if rep.Containers+rep.Networks+rep.Volumes > 0 {
		opts.Logger.Info("removed leftovers of dead runs", "containers", rep.Containers, "networks", rep.Networks, "volumes", rep.Volumes)
	}
	if s.Images, err = images.Ensure(ctx, docker, images.Options{Progress: opts.Progress}); err != nil {
		return nil, err
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := s.startNetwork(ctx); err != nil {
		return nil, err
	}
	// Volumes exist before the containers that mount them: Docker would
	// otherwise create them unlabelled and without their options.
	if mode == SUTContainer {
		if s.volume, err = s.createVolume(ctx, "tierd-data", opts.TierdDataTmpfs); err != nil {
			return nil, err
		}
	} else if err := s.makeTierdDir(ctx); err != nil {
		return nil, err
	}
	if opts.RestartableMinIO {
		if s.minioVolume, err = s.createVolume(ctx, "minio-data", opts.MinIODataTmpfs); err != nil {
			return nil, err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.startMinIO(gctx) })
	g.Go(func() error { return s.startToxiproxy(gctx) })
	g.Go(func() error { return s.startS3Fault(gctx) })
	if s.volume != "" || s.minioVolume != "" {
		g.Go(func() error { return s.startDataVol(gctx) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	s.tierdBase = maps.Clone(opts.TierdEnv)
	if err := s.startTierd(ctx, mode, opts.TierdEnv); err != nil {
		return nil, err
	}
	s.StartDuration = time.Since(start)
	tierdURL, _ := s.TierdURL()
	opts.Logger.Info("stack started", "run", run.ID, "sut", mode, "duration", s.StartDuration.Round(time.Millisecond),
		"tierd", tierdURL, "minio", s.S3Endpoint)
	return s, nil
}

func (s *Stack) labels() map[string]string { return s.Run.Labels() }

func (s *Stack) startNetwork(ctx context.Context) error {
	nw, err := newNetwork(ctx, s.labels())
	if err != nil {
		return fmt.Errorf("harness: network: %w", err)
	}
	s.network = nw
	return nil
}

func (s *Stack) run(ctx context.Context, name string, req testcontainers.ContainerRequest) (testcontainers.Container, error) {
	req.Labels = s.labels()
	req.Name = "tierchaos-" + s.Run.ID + "-" + name
	req.Networks = []string{s.network.Name}
	req.NetworkAliases = map[string][]string{s.network.Name: {name}}
	// Publish ports on loopback only: host-side clients only ever connect
	// to 127.0.0.1, and nothing of the stack is reachable from elsewhere.
	exposed := req.ExposedPorts
	modify := req.HostConfigModifier
	req.HostConfigModifier = func(hc *container.HostConfig) {
		if modify != nil {
			modify(hc)
		}
		hc.PortBindings = dockernet.PortMap{}
		for _, p := range exposed {
			hc.PortBindings[dockernet.MustParsePort(p)] = []dockernet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
		}
	}
	// Docker picks host ports from the range the kernel also uses for
	// outgoing connections, so a pick can collide with a port some other
	// process has just bound: retry such a start a few times.
	for attempt := 1; ; attempt++ {
		c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
			ContainerRequest: req,
			Started:          true,
			Logger:           tcLogger{s.log},
		})
		if err == nil {
			s.mu.Lock()
			s.containers[name] = c
			s.mu.Unlock()
			return c, nil
		}
		if c != nil {
			if terr := c.Terminate(context.WithoutCancel(ctx)); terr != nil {
				s.log.Warn("removing failed container", "name", name, "err", terr)
			}
		}
		if attempt < 10 && strings.Contains(err.Error(), "address already in use") {
			s.log.Info("host port collision, retrying", "container", name, "attempt", attempt)
			// Back off with jitter: collisions come from other processes
			// binding ports at the same moment.
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("harness: start %s: %w", name, ctx.Err())
			case <-time.After(time.Duration(attempt) * time.Duration(20+rand.IntN(80)) * time.Millisecond):
			}
			continue
		}
		return nil, fmt.Errorf("harness: start %s: %w", name, err)
	}
}

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
		return fmt.Errorf("harness: minio endpoint: %w", err)
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
		return fmt.Errorf("harness: minio client: %w", err)
	}
	// MinIO can still answer XMinioServerNotInitialized for a moment after
	// "ready": retry within the start deadline.
	for {
		err := s.S3.MakeBucket(ctx, Bucket, minio.MakeBucketOptions{})
		if err == nil {
			return nil
		}
		if !minioNotInitialized(err) {
			return fmt.Errorf("harness: make bucket: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: make bucket: %w (last: %w)", ctx.Err(), err)
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
		return fmt.Errorf("harness: s3fault endpoint: %w", err)
	}
	api, err := c.PortEndpoint(ctx, s3faultAPIPort, "http")
	if err != nil {
		return fmt.Errorf("harness: s3fault control endpoint: %w", err)
	}
	s.S3FaultControlURL = api
	if s.S3Faults, err = s3fault.NewClient(api, s3fault.WithToken(s.secrets.s3faultToken)); err != nil {
		return fmt.Errorf("harness: s3fault client: %w", err)
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
		return fmt.Errorf("harness: toxiproxy endpoint: %w", err)
	}
	s.ToxiproxyURL = api
	s.Toxiproxy = toxiproxy.NewClient(api)
	listen := "0.0.0.0:" + strings.TrimSuffix(s3ProxyPort, "/tcp")
	if s.S3Proxy, err = s.Toxiproxy.CreateProxy(S3ProxyName, listen, minioAlias+":9000"); err != nil {
		return fmt.Errorf("harness: create proxy: %w", err)
	}
	if s.Net, err = netfault.New(s.S3Proxy, netfault.WithLogger(s.log)); err != nil {
		return fmt.Errorf("harness: network faults: %w", err)
	}
	if s.S3ProxyEndpoint, err = c.PortEndpoint(ctx, s3ProxyPort, ""); err != nil {
		return fmt.Errorf("harness: proxy endpoint: %w", err)
	}
	return nil
}

// randomToken returns 32 random bytes from crypto/rand, hex-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = crand.Read(b) // crypto/rand.Read never returns an error (it crashes the program instead)
	return hex.EncodeToString(b)
}

// tierdEnv returns tierd's environment: where it finds S3 from where it
// runs, plus the caller's additions. The debug listener binds every
// interface: in the container the host reaches it through the published
// port (tierd's own default is loopback only).
func (s *Stack) tierdEnv(s3Endpoint string, extra map[string]string) map[string]string {
	env := map[string]string{
		"TIERD_LISTEN_ADDR":   ":8080",
		"TIERD_DEBUG_ADDR":    "0.0.0.0:6060",
		"TIERD_GRPC_ADDR":     ":9090",
		"TIERD_DATA_DIR":      "/data",
		"TIERD_S3_ENDPOINT":   s3Endpoint,
		"TIERD_S3_ACCESS_KEY": s.secrets.accessKey,
		"TIERD_S3_SECRET_KEY": s.secrets.secretKey,
		"TIERD_S3_BUCKET":     Bucket,
		"TIERD_S3_OP_TIMEOUT": "5s",
		// Block and mutex profiles for load runs (off in tierd's defaults).
		"TIERD_BLOCK_PROFILE_RATE":     "10000",
		"TIERD_MUTEX_PROFILE_FRACTION": "10",
		"TIERD_API_TOKEN":              s.APIToken,
		"TIERD_ADMIN_TOKEN":            s.AdminToken,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func (s *Stack) startTierd(ctx context.Context, mode string, extra map[string]string) error {
	switch mode {
	case SUTContainer:
		env := s.tierdEnv(s3faultAlias+":"+strings.TrimSuffix(s3faultS3Port, "/tcp"), extra)
		req := testcontainers.ContainerRequest{
			Image:        s.Images.Tierd,
			Env:          env,
			ExposedPorts: []string{tierdAPIPort, tierdDebugPort, tierdGRPCPort},
			WaitingFor: wait.ForHTTP("/readyz").WithPort(tierdAPIPort).
				WithStartupTimeout(time.Minute).WithPollInterval(50 * time.Millisecond),
		}
		// A plain volume, or a tmpfs volume with TierdDataTmpfs; the
		// sidecar keeps either mounted across tierd's restarts.
		req.Mounts = testcontainers.Mounts(testcontainers.VolumeMount(s.volume, "/data"))
		c, err := s.run(ctx, "tierd", req)
		if err != nil {
			return err
		}
		s.setSUT(&containerSUT{docker: s.docker, c: c})
	case SUTInProcess:
		env := s.tierdEnv(s.S3FaultEndpoint, extra)
		cfg, err := config.FromEnv(config.Default(), func(k string) string { return env[k] })
		if err != nil {
			return fmt.Errorf("harness: tierd config: %w", err)
		}
		cfg.ApplyProfileRates() // what tierd's main does; process-wide
		in := newInProcessSUT(cfg, s.log, s.tierdDir, s.defects)
		in.powerLoss = s.powerLoss
		s.setSUT(in)
		if err := in.start(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("harness: %s=%q: want %q or %q", EnvSUT, mode, SUTContainer, SUTInProcess)
	}
	s.tierdExtra = extra
	if s.transport != nil {
		s.transport.CloseIdleConnections()
		return nil
	}
	s.transport = &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			api, _, err := s.currentSUT().addrs()
			if err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, network, api)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	// The client's host name is a placeholder: the dialer always connects to
	// wherever tierd listens now, so the client survives restarts.
	s.Tierd = tierclient.New("http://tierd", tierclient.WithHTTPClient(&http.Client{Transport: s.transport, Timeout: 60 * time.Second}),
		tierclient.WithToken(s.APIToken), tierclient.WithAdminToken(s.AdminToken))
	return nil
}

// ReconfigureTierd stops tierd gracefully and starts it again, on the same
// data, with env added over the environment the stack started it with
// (an empty value removes a variable). In container mode this replaces the
// container.
func (s *Stack) ReconfigureTierd(ctx context.Context, env map[string]string) error {
	merged := map[string]string{}
	for k, v := range s.tierdExtra {
		merged[k] = v
	}
	for k, v := range env {
		if v == "" {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	return s.restartTierdWith(ctx, merged)
}

// restartTierdWith stops tierd gracefully and starts it again on the same
// data with exactly the extra settings extra; when tierd does not start
// with them, it brings it back with the ones it had.
func (s *Stack) restartTierdWith(ctx context.Context, merged map[string]string) error {
	if err := s.currentSUT().stop(ctx); err != nil {
		return err
	}
	if cs, ok := s.currentSUT().(*containerSUT); ok {
		if err := cs.c.Terminate(ctx); err != nil {
			return fmt.Errorf("harness: remove tierd: %w", err)
		}
		s.mu.Lock()
		delete(s.containers, "tierd")
		s.mu.Unlock()
	}
	if err := s.startTierd(ctx, s.Mode, merged); err != nil {
		// tierd refused the settings (or did not start): bring it back
		// with the ones it had, so the stack stays usable.
		old := s.tierdExtra
		if rerr := s.startTierd(ctx, s.Mode, old); rerr != nil {
			return errors.Join(err, fmt.Errorf("harness: restart tierd with its previous settings: %w", rerr))
		}
		return errors.Join(err, s.waitReady(ctx))
	}
	return s.waitReady(ctx)
}

// TierdContainerID returns the id of tierd's container, or "" when tierd
// runs in the test process.
func (s *Stack) TierdContainerID() string {
	if cs, ok := s.currentSUT().(*containerSUT); ok {
		return cs.c.GetContainerID()
	}
	return ""
}

// TierdURL returns the base URL of tierd's REST API on the host. It changes
// when tierd restarts; Stack.Tierd follows it by itself.
func (s *Stack) TierdURL() (string, error) {
	api, _, err := s.currentSUT().addrs()
	return "http://" + api, err
}

// TierdGRPC returns the host:port of tierd's gRPC API on the host (for
// grpcclient.Dial). It changes when tierd restarts.
func (s *Stack) TierdGRPC() (string, error) {
	return s.currentSUT().grpcAddr()
}

// DebugURL returns the base URL of tierd's pprof and metrics listener.
func (s *Stack) DebugURL() (string, error) {
	_, dbg, err := s.currentSUT().addrs()
	return "http://" + dbg, err
}

// KillTierd ends tierd abruptly (SIGKILL; in process: abandon the instance
// unclosed). Its data volume is kept for RestartTierd.
func (s *Stack) KillTierd(ctx context.Context) error {
	return s.currentSUT().kill(ctx)
}

// StopTierd stops tierd gracefully, keeping its data volume.
func (s *Stack) StopTierd(ctx context.Context) error {
	return s.currentSUT().stop(ctx)
}

// StartTierd starts a stopped or killed tierd on the same data and waits
// until it is ready.
func (s *Stack) StartTierd(ctx context.Context) error {
	if err := s.currentSUT().start(ctx); err != nil {
		return err
	}
	s.transport.CloseIdleConnections()
	return s.waitReady(ctx)
}

// RestartTierd kills tierd (or stops it when graceful) and starts it again.
func (s *Stack) RestartTierd(ctx context.Context, graceful bool) error {
	var err error
	if graceful {
		err = s.StopTierd(ctx)
	} else {
		err = s.KillTierd(ctx)
	}
	if err != nil {
		return err
	}
	return s.StartTierd(ctx)
}

// PauseTierd freezes tierd (SIGSTOP through the cgroup freezer; in process:
// API requests are held) until UnpauseTierd.
func (s *Stack) PauseTierd(ctx context.Context) error { return s.currentSUT().pause(ctx) }

// UnpauseTierd resumes a paused tierd.
func (s *Stack) UnpauseTierd(ctx context.Context) error { return s.currentSUT().unpause(ctx) }

func (s *Stack) waitReady(ctx context.Context) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.Tierd.Readyz(rctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: tierd not ready: %w (last: %w)", ctx.Err(), err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// TierdLogs returns tierd's log (stdout and stderr of its container).
func (s *Stack) TierdLogs(ctx context.Context) (string, error) {
	if s.currentSUT() == nil {
		return "", ErrNotRunning
	}
	return s.currentSUT().logs(ctx)
}

// Close stops and removes every container, the network and the volume of
// the stack, and reports how long teardown took.
func (s *Stack) Close(ctx context.Context) error {
	start := time.Now()
	var errs []error
	if s.currentSUT() != nil {
		errs = append(errs, s.currentSUT().close(ctx))
	}
	// After the in-process tierd that used it.
	if err := s.closeTierdDir(); err != nil {
		errs = append(errs, fmt.Errorf("harness: tierd's data directory: %w", err))
	}
	s.closeIdleClients()
	if s.docker != nil {
		rep, err := cleanup.RemoveRun(ctx, s.docker, s.Run.ID)
		if err != nil {
			errs = append(errs, err)
		}
		s.log.Info("stack removed", "run", s.Run.ID, "containers", rep.Containers, "networks", rep.Networks,
			"volumes", rep.Volumes, "duration", time.Since(start).Round(time.Millisecond))
		errs = append(errs, s.docker.Close())
	}
	return errors.Join(errs...)
}

func newNetwork(ctx context.Context, labels map[string]string) (*testcontainers.DockerNetwork, error) {
	return network.New(ctx, network.WithLabels(labels))
}

// tcLogger sends Testcontainers' own chatter to slog at debug level.
type tcLogger struct{ l *slog.Logger }

// Printf implements Testcontainers' log.Logger.
func (l tcLogger) Printf(format string, v ...any) {
	l.l.Debug(fmt.Sprintf(format, v...), "source", "testcontainers")
}

// currentSUT returns tierd as it runs now.
func (s *Stack) currentSUT() sut {
	s.sutMu.RLock()
	defer s.sutMu.RUnlock()
	return s.sut
}

// setSUT installs a new tierd.
func (s *Stack) setSUT(x sut) {
	s.sutMu.Lock()
	defer s.sutMu.Unlock()
	s.sut = x
}
