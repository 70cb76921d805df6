package harness

import (
	"context"
	"errors"
	"fmt"
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

// ErrNoDataDir is returned when tierd's data is not what a call needs:
// DataDir with tierd in a container (its data is in a Docker volume, with
// no path on this machine), and FillData, FreeData and DataTmpfs when
// tierd's data is not on a size-limited tmpfs of the harness (filling it
// would fill a real disk).
var ErrNoDataDir = errors.New("harness: tierd's data directory is not what this call needs")

// Names of the data sidecar and of its volumes.
const (
	datavolAlias = "datavol"
	datavolPort  = "9200/tcp"
	// volumeTierd and volumeMinIO are the sidecar's names of tierd's and
	// MinIO's data volumes, mounted at /volumes/<name> in its container.
	volumeTierd = "tierd"
	volumeMinIO = "minio"
	// minioTmpfsDefault is the size of MinIO's tmpfs volume when
	// Options.MinIODataTmpfs is empty.
	minioTmpfsDefault = "1g"
)

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
		return "", fmt.Errorf("harness: volume %s: %w", opts.Name, err)
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
	for name, vol := range map[string]string{volumeTierd: s.volume, volumeMinIO: s.minioVolume} {
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
		return fmt.Errorf("harness: data sidecar endpoint: %w", err)
	}
	if s.dataVol, err = datavol.NewClient(base, nil); err != nil {
		return fmt.Errorf("harness: data sidecar client: %w", err)
	}
	return nil
}

// makeTierdDir prepares an in-process tierd's data directory: a tmpfs of
// Options.TierdDataTmpfs when set (internal/tmpfs: a helper child holds it
// in a mount namespace of its own, no root needed where user namespaces
// are enabled), else a new temporary directory. When no tmpfs can be made
// and CI is not set, it falls back to a temporary directory and remembers
// why: DataTmpfs reports it and RequireDataTmpfs skips the rows that need
// a tmpfs (in CI, Start fails instead).
func (s *Stack) makeTierdDir(ctx context.Context) error {
	if s.dataTmpfs != "" {
		f, err := tmpfs.New(ctx, s.dataTmpfs, tmpfs.ModeAuto)
		switch {
		case err == nil:
			s.tierdTmpfs, s.tierdDir = f, f.Dir()
			s.log.Info("tierd's data directory is a tmpfs", "size", s.dataTmpfs, "held_in", "a "+f.Mode().String()+" of a helper child", "dir", f.Dir())
			return nil
		case errors.Is(err, tmpfs.ErrUnavailable) && os.Getenv("CI") == "":
			s.tmpfsErr = err
			s.log.Warn("NO TMPFS: tierd's data directory is a plain temporary directory, so FillData and a real ENOSPC are unavailable in process mode here; "+
				"the rows that need them skip (they run with tierd in a container: TIERCHAOS_SUT=container); set CI=true to make this a failure", "err", err)
		default:
			return fmt.Errorf("harness: tierd's data tmpfs in process mode: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "tierchaos-tierd-")
	if err != nil {
		return fmt.Errorf("harness: data dir: %w", err)
	}
	s.tierdDir, s.ownTierdDir = dir, true
	return nil
}

// closeTierdDir releases the in-process data directory after tierd is
// closed: the tmpfs (its helper ends) or the temporary directory.
func (s *Stack) closeTierdDir() error {
	var errs []error
	if s.tierdTmpfs != nil {
		errs = append(errs, s.tierdTmpfs.Close())
		s.tierdTmpfs = nil
	}
	if s.ownTierdDir {
		errs = append(errs, os.RemoveAll(s.tierdDir))
		s.ownTierdDir = false
	}
	return errors.Join(errs...)
}

// DataDir returns the path of tierd's data directory on this machine,
// which exists only with tierd in the test process (with
// Options.TierdDataTmpfs it is /proc/<helper>/root/tmp, see
// internal/tmpfs). With tierd in a container its data is in a Docker
// volume and the error wraps ErrNoDataDir: use TierdData. The path stays
// the same across tierd restarts.
func (s *Stack) DataDir() (string, error) {
	if s.Mode == SUTInProcess {
		return s.tierdDir, nil
	}
	return "", fmt.Errorf("harness: tierd's data is in a Docker volume, with no path on this machine (use TierdData): %w", ErrNoDataDir)
}

// TierdData returns tierd's data directory as a datavol.Volume, in both
// modes: in process the directory itself, in a container the data
// sidecar's view of tierd's volume. It reads the same data across tierd's
// restarts.
func (s *Stack) TierdData() (datavol.Volume, error) {
	if s.Mode == SUTInProcess {
		return datavol.Dir(s.tierdDir), nil
	}
	if s.dataVol == nil {
		return nil, errors.New("harness: no data sidecar runs")
	}
	return s.dataVol.Volume(volumeTierd), nil
}

// MinIOData returns MinIO's data volume through the data sidecar; it needs
// Options.RestartableMinIO (else ErrMinIONotRestartable).
func (s *Stack) MinIOData() (datavol.Volume, error) {
	if !s.restartableMinIO || s.dataVol == nil {
		return nil, ErrMinIONotRestartable
	}
	return s.dataVol.Volume(volumeMinIO), nil
}

// DataTmpfs returns nil when tierd's data directory is on a size-limited
// tmpfs of the harness (Options.TierdDataTmpfs), which FillData may fill;
// otherwise an error wrapping ErrNoDataDir that says why.
func (s *Stack) DataTmpfs() error {
	switch {
	case s.dataTmpfs == "":
		return fmt.Errorf("harness: tierd's data is not on a tmpfs (start the stack with Options.TierdDataTmpfs): %w", ErrNoDataDir)
	case s.tmpfsErr != nil:
		return fmt.Errorf("harness: tierd's data in process mode is a plain directory, as no tmpfs can be made here (%w): %w", s.tmpfsErr, ErrNoDataDir)
	}
	return nil
}

// RequireDataTmpfs ends a test that needs tierd's data on a tmpfs of the
// harness (FillData, a real ENOSPC) when the stack has none. When the
// stack asked for one (Options.TierdDataTmpfs) and fell back to a plain
// directory because this machine allows no tmpfs in process mode, the test
// is skipped with the reason and where it runs (with tierd in a
// container), or fails when CI is set; a stack that never asked for one
// fails the test.
func (s *Stack) RequireDataTmpfs(t testing.TB) {
	t.Helper()
	err := s.DataTmpfs()
	switch {
	case err == nil:
	case s.tmpfsErr == nil:
		t.Fatalf("harness: this test needs tierd's data on a tmpfs: %v", err)
	case os.Getenv("CI") != "":
		t.Fatalf("harness: this test needs tierd's data on a tmpfs, and CI is set: %v", err)
	default:
		t.Skipf("harness: this test needs tierd's data on a tmpfs, which it has here only with tierd in a container (TIERCHAOS_SUT=container); set CI=true to make this a failure: %v", err)
	}
}

// FillData fills the file system of tierd's data directory until it is
// full (ENOSPC) by writing a filler file in its root (a dot-file that
// tierd never reads, sweeps or counts, see datavol.FillerPrefix), and
// returns the bytes it wrote. It needs the data on a tmpfs of the harness
// (DataTmpfs; else the error wraps ErrNoDataDir). On a full tmpfs a write
// that fits in the last, partly used page of an existing file still
// succeeds, so a tiny insert may still pass. FreeData removes the fillers.
func (s *Stack) FillData(ctx context.Context) (int64, error) {
	v, err := s.fillable()
	if err != nil {
		return 0, err
	}
	n, err := v.Fill(ctx)
	if err != nil {
		return n, fmt.Errorf("harness: fill data: %w", err)
	}
	s.log.Info("filled tierd's data file system", "bytes", n)
	return n, nil
}

// FreeData removes FillData's filler files.
func (s *Stack) FreeData(ctx context.Context) error {
	v, err := s.fillable()
	if err != nil {
		return err
	}
	if _, err := v.Free(ctx); err != nil {
		return fmt.Errorf("harness: free data: %w", err)
	}
	return nil
}

// fillable returns TierdData when DataTmpfs allows filling it.
func (s *Stack) fillable() (datavol.Volume, error) {
	if err := s.DataTmpfs(); err != nil {
		return nil, err
	}
	return s.TierdData()
}

// WipeTierdData stops tierd, removes everything in its data directory and
// starts it again on the empty directory.
func (s *Stack) WipeTierdData(ctx context.Context) error {
	v, err := s.TierdData()
	if err != nil {
		return err
	}
	if err := s.StopTierd(ctx); err != nil {
		return err
	}
	if err := v.Clear(ctx); err != nil {
		return errors.Join(fmt.Errorf("harness: wipe tierd's data: %w", err), s.StartTierd(ctx))
	}
	return s.StartTierd(ctx)
}
