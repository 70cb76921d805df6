// Package stack is the generic core of the chaos harness: it starts, with
// Testcontainers, MinIO (data on tmpfs) behind Toxiproxy and the S3 fault
// layer, the data sidecar when the service keeps data, and the user's
// service described by a Service value, in a container or in the test
// process, all on one labelled Docker network. It hands a test a direct S3
// client that bypasses every fault, the fault controls, the service's
// endpoints and process controls (kill, stop, pause, restart,
// reconfigure), and cleans up without Ryuk (see package cleanup). It
// imports nothing of any service under test: tierd is one adapter of it
// (harness/tierd), examples/kvstore another.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/minio/minio-go/v7"
	"github.com/moby/moby/api/types/container"
	dockernet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/datavol"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/images"
	"github.com/tierchaos/tierchaos/harness/netfault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/internal/tmpfs"
)

// S3ProxyName is the Toxiproxy proxy in front of MinIO on the service's
// S3 path.
const S3ProxyName = "s3"

// tmpfsOwner are the tmpfs mount options that give a tmpfs (a container's
// or a tmpfs volume's) to the user every container of the stack runs as.
var tmpfsOwner = fmt.Sprintf("uid=%d,gid=%d,mode=0755", images.RunUID, images.RunGID)

// Options configures Start.
type Options struct {
	// Service is the service under test.
	Service Service
	// Env adds or overrides variables of the service's environment; the
	// settings ClearFaults gives it back after Reconfigure.
	Env map[string]string
	// Logger receives the stack's own log lines; slog.Default when nil.
	Logger *slog.Logger
	// Progress receives image build progress; os.Stderr when nil.
	Progress io.Writer
	// Mode is ModeContainer or ModeInProcess; from TIERCHAOS_SUT when
	// empty, else ModeContainer.
	Mode string
	// Bucket is the bucket the stack creates for the service; the
	// service's name when empty.
	Bucket string
	// DataTmpfs, when set (e.g. "4m", "256m"), puts the service's data
	// directory (Service.DataDir) on a tmpfs of that size, so that a test
	// can fill it (FillData, a real ENOSPC). Its content survives kills,
	// restarts and Reconfigure. With the service in a container it is a
	// Docker volume of the local driver with tmpfs options, which the data
	// sidecar keeps mounted; in process it is a tmpfs that a helper child
	// holds in a mount namespace of its own (internal/tmpfs), which needs
	// no root where user namespaces are enabled (elsewhere, outside CI, a
	// plain directory: see DataTmpfs).
	DataTmpfs string
	// RestartableMinIO puts MinIO's /data on a Docker tmpfs volume that
	// the data sidecar keeps mounted, instead of a container tmpfs, so that
	// objects survive StopMinIO, StartMinIO and RestartMinIO, which need it.
	RestartableMinIO bool
	// MinIODataTmpfs is the size of that volume; "1g" when empty.
	MinIODataTmpfs string
	// Seed seeds the S3 fault layer's probabilistic rules.
	Seed uint64
	// StartTimeout bounds the whole start; 2 minutes when zero (image
	// builds are done before and not counted).
	StartTimeout time.Duration
}

// Stack is a running stack: object store, fault layers and the service.
type Stack struct {
	// Run identifies this run's Docker objects.
	Run cleanup.Run
	// Images are the image references of the stack's own containers.
	Images images.Set
	// ServiceImage is the service's image (empty in process).
	ServiceImage string
	// Mode is how the service runs: ModeContainer or ModeInProcess.
	Mode string
	// Bucket is the service's bucket.
	Bucket string
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
	// S3Faults controls the S3-aware fault layer on the service's S3 path
	// (503 SlowDown, 500, truncated or bit-flipped bodies, cut uploads).
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
	// S3Proxy is the proxy on the service's S3 path.
	S3Proxy *toxiproxy.Proxy
	// Net is the typed network fault API on S3Proxy (see harness/netfault).
	Net *netfault.Proxy

	// StartDuration is how long Start took once images existed.
	StartDuration time.Duration

	svc        Service
	log        *slog.Logger
	docker     *testcontainers.DockerClient
	network    *testcontainers.DockerNetwork
	mu         sync.Mutex
	containers map[string]testcontainers.Container
	// retiredLogs are the logs of the service containers removed since
	// the current case began (guarded by mu): a case that reconfigures
	// the service replaces its container, and a failure must still show
	// what the earlier container logged.
	retiredLogs []string
	seed        uint64
	// procMu guards proc: restarts replace it while traffic dials it.
	procMu sync.RWMutex
	proc   process
	// inproc is the in-process service (ModeInProcess), one for the
	// stack's lifetime: it keeps the instances a kill abandoned.
	inproc *inProcess
	// settings are the service's current Options.Env plus Reconfigure's;
	// base is Options.Env, what ClearFaults gives it back.
	settings, base map[string]string
	// transports dial the service's current endpoint, by port name.
	transports map[string]*http.Transport
	probeHTTP  *http.Client

	// data is the service's data: its volume or directory.
	data dataDir
	// dataVol is the data sidecar's client (nil without the sidecar).
	dataVol *datavol.Client

	// secrets are the run's random credentials (secrets.go).
	secrets secrets

	restartableMinIO bool
	minioVolume      string // MinIO's tmpfs volume (RestartableMinIO)
	minioAddr        string // MinIO's current host:port; guarded by mu
	s3Transport      *http.Transport
}

// Core returns s itself: a service's adapter that embeds *Stack gets it
// too, so faults (harness/fault) apply to the core or to any adapter.
func (s *Stack) Core() *Stack { return s }

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
	mode := opts.Mode
	if mode == "" {
		mode = os.Getenv(EnvSUT)
	}
	if mode == "" {
		mode = ModeContainer
	}
	if err := opts.Service.validate(mode); err != nil {
		return nil, err
	}
	if opts.RestartableMinIO && opts.MinIODataTmpfs == "" {
		opts.MinIODataTmpfs = minioTmpfsDefault
	}
	for name, size := range map[string]string{"DataTmpfs": opts.DataTmpfs, "MinIODataTmpfs": opts.MinIODataTmpfs} {
		if _, err := tmpfs.ParseSize(size); size != "" && err != nil {
			return nil, &Error{Code: CodeBadSize, Field: "Options." + name, Msg: err.Error(), Err: err}
		}
	}
	if opts.DataTmpfs != "" && opts.Service.DataDir == "" {
		return nil, badService("Service.DataDir", "Options.DataTmpfs asks for a data tmpfs, but the service keeps no data (empty)")
	}
	if opts.Bucket == "" {
		opts.Bucket = opts.Service.Name
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
		secrets: sec, svc: opts.Service, Bucket: opts.Bucket,
		Run: run, Mode: mode, log: opts.Logger, docker: docker, seed: opts.Seed,
		containers: map[string]testcontainers.Container{}, restartableMinIO: opts.RestartableMinIO,
		base: maps.Clone(opts.Env), transports: map[string]*http.Transport{},
		data: dataDir{tmpfsSize: opts.DataTmpfs},
	}
	s.probeHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
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
	if err := s.ensureImages(ctx, opts.Progress); err != nil {
		return nil, err
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if s.network, err = network.New(ctx, network.WithLabels(s.labels())); err != nil {
		return nil, fmt.Errorf("stack: network: %w", err)
	}
	// Volumes exist before the containers that mount them: Docker would
	// otherwise create them unlabelled and without their options.
	if err := s.prepareData(ctx); err != nil {
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
	if s.data.volume != "" || s.minioVolume != "" {
		g.Go(func() error { return s.startDataVol(gctx) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if mode == ModeInProcess {
		s.inproc = newInProcess(s.svc, s.log, s.data.dir)
	}
	if err := s.launch(ctx, maps.Clone(opts.Env)); err != nil {
		return nil, err
	}
	s.StartDuration = time.Since(start)
	opts.Logger.Info("stack started", "run", run.ID, "service", s.svc.Name, "sut", mode,
		"duration", s.StartDuration.Round(time.Millisecond), "minio", s.S3Endpoint)
	return s, nil
}

// ensureImages makes sure the stack's images and, in a container, the
// service's exist.
func (s *Stack) ensureImages(ctx context.Context, progress io.Writer) error {
	opts := images.Options{Progress: progress}
	var err error
	if s.Images, err = images.EnsureStack(ctx, s.docker, opts); err != nil {
		return err
	}
	if s.Mode != ModeContainer {
		return nil
	}
	if s.ServiceImage = s.svc.Image; s.ServiceImage == "" {
		s.ServiceImage, err = images.EnsureOwn(ctx, s.docker, opts, *s.svc.Build)
	}
	return err
}

func (s *Stack) labels() map[string]string { return s.Run.Labels() }

// run starts a container of the stack named name (also its network
// alias), labelled with the run and with its ports published on loopback.
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
				return nil, fmt.Errorf("stack: start %s: %w", name, ctx.Err())
			case <-time.After(time.Duration(attempt) * time.Duration(20+rand.IntN(80)) * time.Millisecond):
			}
			continue
		}
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
}

// Close stops the service, then removes every container, the network and
// the volumes of the stack, and logs how long teardown took.
func (s *Stack) Close(ctx context.Context) error {
	start := time.Now()
	var errs []error
	if p := s.current(); p != nil {
		errs = append(errs, p.close(ctx))
	}
	// After the in-process service that used it.
	if err := s.data.close(); err != nil {
		errs = append(errs, fmt.Errorf("stack: the service's data directory: %w", err))
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

// tcLogger sends Testcontainers' own chatter to slog at debug level.
type tcLogger struct{ l *slog.Logger }

// Printf implements Testcontainers' log.Logger.
func (l tcLogger) Printf(format string, v ...any) {
	l.l.Debug(fmt.Sprintf(format, v...), "source", "testcontainers")
}
