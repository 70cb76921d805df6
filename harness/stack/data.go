package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/tierchaos/tierchaos/harness/datavol"
	"github.com/tierchaos/tierchaos/internal/tmpfs"
)

// ErrNoDataDir is returned when the service's data is not what a call
// needs: DataDir with the service in a container (its data is in a Docker
// volume, with no path on this machine), a service without a data
// directory, and FillData, FreeData and DataTmpfs when the data is not on
// a size-limited tmpfs of the harness (filling it would fill a real disk).
var ErrNoDataDir = errors.New("stack: the service's data directory is not what this call needs")

// Names of the data sidecar and of its volumes.
const (
	datavolAlias = "datavol"
	datavolPort  = "9200/tcp"
	// volumeService and volumeMinIO are the sidecar's names of the
	// service's and MinIO's data volumes, mounted at /volumes/<name> in
	// its container.
	volumeService = "service"
	volumeMinIO   = "minio"
	// minioTmpfsDefault is the size of MinIO's tmpfs volume when
	// Options.MinIODataTmpfs is empty.
	minioTmpfsDefault = "1g"
)

// dataDir is the service's data: a Docker volume (in a container) or a
// directory of the stack (in process).
type dataDir struct {
	// tmpfsSize is Options.DataTmpfs.
	tmpfsSize string
	// volume is the Docker volume (container mode).
	volume string
	// dir is the directory (in process): a tmpfs of fs, or a temporary
	// directory of the stack (ownDir); tmpfsErr says why it is not a
	// tmpfs although one was asked for.
	dir      string
	ownDir   bool
	fs       *tmpfs.FS
	tmpfsErr error
}

// prepareData creates the service's data volume, or its directory in
// process, when the service keeps data.
func (s *Stack) prepareData(ctx context.Context) error {
	if s.svc.DataDir == "" {
		return nil
	}
	if s.Mode == ModeContainer {
		var err error
		s.data.volume, err = s.createVolume(ctx, s.svc.Name+"-data", s.data.tmpfsSize)
		return err
	}
	return s.data.makeDir(ctx, s.svc.Name, s.log)
}

// createVolume creates a labelled Docker volume named
// tierchaos-<run>-<suffix>: with size set, a volume of the local driver
// with tmpfs options (the daemon mounts a tmpfs of that size, so a full
// volume is a real ENOSPC, with no mount on the test's host).
func (s *Stack) createVolume(ctx context.Context, suffix, size string) (string, error) {
	opts := client.VolumeCreateOptions{Name: "tierchaos-" + s.Run.ID + "-" + suffix, Labels: s.labels()}
	if size != "" {
		opts.Driver = "local"
		// Owned by the user the images run as (images.RunUser), not root.
		opts.DriverOpts = map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=" + size + "," + tmpfsOwner}
	}
	if _, err := s.docker.VolumeCreate(ctx, opts); err != nil {
		return "", fmt.Errorf("stack: volume %s: %w", opts.Name, err)
	}
	return opts.Name, nil
}

// startDataVol starts the data sidecar: it holds the stack's data volumes
// mounted for the stack's lifetime (the local driver unmounts a tmpfs
// volume, losing its content, when its last container stops) and serves
// them to the test process (harness/datavol).
func (s *Stack) startDataVol(ctx context.Context) error {
	args := []string{"-listen", ":" + strings.TrimSuffix(datavolPort, "/tcp")}
	var mounts []testcontainers.ContainerMount
	for name, vol := range map[string]string{volumeService: s.data.volume, volumeMinIO: s.minioVolume} {
		if vol == "" {
			continue
		}
		target := "/volumes/" + name
		args = append(args, "-volume", name+"="+target)
		mounts = append(mounts, testcontainers.VolumeMount(vol, testcontainers.ContainerMountTarget(target)))
	}
	c, err := s.run(ctx, datavolAlias, testcontainers.ContainerRequest{
		Image:        s.Images.DataVol,
		Cmd:          args,
		ExposedPorts: []string{datavolPort},
		Mounts:       testcontainers.Mounts(mounts...),
		WaitingFor: wait.ForHTTP("/healthz").WithPort(datavolPort).WithStartupTimeout(time.Minute).
			WithPollInterval(50 * time.Millisecond),
	})
	if err != nil {
		return err
	}
	base, err := c.PortEndpoint(ctx, datavolPort, "http")
	if err != nil {
		return fmt.Errorf("stack: data sidecar endpoint: %w", err)
	}
	if s.dataVol, err = datavol.NewClient(base, nil); err != nil {
		return fmt.Errorf("stack: data sidecar client: %w", err)
	}
	return nil
}

// makeDir prepares an in-process service's data directory: a tmpfs of
// Options.DataTmpfs when set (internal/tmpfs: a helper child holds it in a
// mount namespace of its own, no root needed where user namespaces are
// enabled), else a new temporary directory. When no tmpfs can be made and
// CI is not set, it falls back to a temporary directory and remembers why:
// DataTmpfs reports it and RequireDataTmpfs skips the rows that need a
// tmpfs (in CI, Start fails instead).
func (d *dataDir) makeDir(ctx context.Context, name string, log *slog.Logger) error {
	if d.tmpfsSize != "" {
		f, err := tmpfs.New(ctx, d.tmpfsSize, tmpfs.ModeAuto)
		switch {
		case err == nil:
			d.fs, d.dir = f, f.Dir()
			log.Info("the service's data directory is a tmpfs", "service", name, "size", d.tmpfsSize,
				"held_in", "a "+f.Mode().String()+" of a helper child", "dir", f.Dir())
			return nil
		case errors.Is(err, tmpfs.ErrUnavailable) && os.Getenv("CI") == "":
			d.tmpfsErr = err
			log.Warn("NO TMPFS: the service's data directory is a plain temporary directory, so FillData and a real ENOSPC are unavailable in process mode here; "+
				"the rows that need them skip (they run with the service in a container: TIERCHAOS_SUT=container); set CI=true to make this a failure",
				"service", name, "err", err)
		default:
			return fmt.Errorf("stack: the service's data tmpfs in process mode: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "tierchaos-"+name+"-")
	if err != nil {
		return fmt.Errorf("stack: data dir: %w", err)
	}
	d.dir, d.ownDir = dir, true
	return nil
}

// close releases the in-process data directory after the service is
// closed: the tmpfs (its helper ends) or the temporary directory.
func (d *dataDir) close() error {
	var errs []error
	if d.fs != nil {
		errs = append(errs, d.fs.Close())
		d.fs = nil
	}
	if d.ownDir {
		errs = append(errs, os.RemoveAll(d.dir))
		d.ownDir = false
	}
	return errors.Join(errs...)
}

// DataDir returns the path of the service's data directory on this
// machine, which exists only with the service in the test process (with
// Options.DataTmpfs it is /proc/<helper>/root/tmp, see internal/tmpfs).
// With the service in a container its data is in a Docker volume and the
// error wraps ErrNoDataDir: use ServiceData. The path stays the same
// across restarts.
func (s *Stack) DataDir() (string, error) {
	if s.Mode == ModeInProcess && s.data.dir != "" {
		return s.data.dir, nil
	}
	return "", fmt.Errorf("stack: %s's data is in a Docker volume, with no path on this machine (use ServiceData), or it keeps none: %w", s.svc.Name, ErrNoDataDir)
}

// ServiceData returns the service's data directory as a datavol.Volume,
// in both modes: in process the directory itself, in a container the
// data sidecar's view of the service's volume. It reads the same data
// across restarts.
func (s *Stack) ServiceData() (datavol.Volume, error) {
	switch {
	case s.svc.DataDir == "":
		return nil, fmt.Errorf("stack: %s keeps no data (Service.DataDir): %w", s.svc.Name, ErrNoDataDir)
	case s.Mode == ModeInProcess:
		return datavol.Dir(s.data.dir), nil
	case s.dataVol == nil:
		return nil, errors.New("stack: no data sidecar runs")
	}
	return s.dataVol.Volume(volumeService), nil
}

// MinIOData returns MinIO's data volume through the data sidecar; it needs
// Options.RestartableMinIO (else ErrMinIONotRestartable).
func (s *Stack) MinIOData() (datavol.Volume, error) {
	if !s.restartableMinIO || s.dataVol == nil {
		return nil, ErrMinIONotRestartable
	}
	return s.dataVol.Volume(volumeMinIO), nil
}

// DataTmpfs returns nil when the service's data directory is on a
// size-limited tmpfs of the harness (Options.DataTmpfs), which FillData
// may fill; otherwise an error wrapping ErrNoDataDir that says why.
func (s *Stack) DataTmpfs() error {
	switch {
	case s.data.tmpfsSize == "":
		return fmt.Errorf("stack: the service's data is not on a tmpfs (start the stack with Options.DataTmpfs): %w", ErrNoDataDir)
	case s.data.tmpfsErr != nil:
		return fmt.Errorf("stack: the service's data in process mode is a plain directory, as no tmpfs can be made here (%w): %w", s.data.tmpfsErr, ErrNoDataDir)
	}
	return nil
}

// RequireDataTmpfs ends a test that needs the service's data on a tmpfs
// of the harness (FillData, a real ENOSPC) when the stack has none. When
// the stack asked for one (Options.DataTmpfs) and fell back to a plain
// directory because this machine allows no tmpfs in process mode, the
// test is skipped with the reason and where it runs (with the service in
// a container), or fails when CI is set; a stack that never asked for
// one fails the test.
func (s *Stack) RequireDataTmpfs(t testing.TB) {
	t.Helper()
	err := s.DataTmpfs()
	switch {
	case err == nil:
	case s.data.tmpfsErr == nil:
		t.Fatalf("stack: this test needs the service's data on a tmpfs: %v", err)
	case os.Getenv("CI") != "":
		t.Fatalf("stack: this test needs the service's data on a tmpfs, and CI is set: %v", err)
	default:
		t.Skipf("stack: this test needs the service's data on a tmpfs, which it has here only with the service in a container (TIERCHAOS_SUT=container); set CI=true to make this a failure: %v", err)
	}
}

// FillData fills the file system of the service's data directory until
// it is full (ENOSPC) by writing a filler file in its root (a dot-file,
// see datavol.FillerPrefix, which the service must leave alone), and
// returns the bytes it wrote. It needs the data on a tmpfs of the harness
// (DataTmpfs; else the error wraps ErrNoDataDir). On a full tmpfs a write
// that fits in the last, partly used page of an existing file still
// succeeds. FreeData removes the fillers.
func (s *Stack) FillData(ctx context.Context) (int64, error) {
	v, err := s.fillable()
	if err != nil {
		return 0, err
	}
	n, err := v.Fill(ctx)
	if err != nil {
		return n, fmt.Errorf("stack: fill data: %w", err)
	}
	s.log.Info("filled the service's data file system", "service", s.svc.Name, "bytes", n)
	return n, nil
}

// FreeData removes FillData's filler files.
func (s *Stack) FreeData(ctx context.Context) error {
	v, err := s.fillable()
	if err != nil {
		return err
	}
	if _, err := v.Free(ctx); err != nil {
		return fmt.Errorf("stack: free data: %w", err)
	}
	return nil
}

// fillable returns ServiceData when DataTmpfs allows filling it.
func (s *Stack) fillable() (datavol.Volume, error) {
	if err := s.DataTmpfs(); err != nil {
		return nil, err
	}
	return s.ServiceData()
}

// WipeData stops the service, removes everything in its data directory
// and starts it again on the empty directory.
func (s *Stack) WipeData(ctx context.Context) error {
	v, err := s.ServiceData()
	if err != nil {
		return err
	}
	if err := s.StopService(ctx); err != nil {
		return err
	}
	if err := v.Clear(ctx); err != nil {
		return errors.Join(fmt.Errorf("stack: wipe the service's data: %w", err), s.StartService(ctx))
	}
	return s.StartService(ctx)
}
