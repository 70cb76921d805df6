package images

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// goInstall builds a third-party binary with `go install module@version`
// into the cache (once; later calls find the cached binary) and returns its
// path. Progress is reported every few seconds since MinIO takes minutes.
func (b *builder) goInstall(ctx context.Context, tp ThirdParty) (string, error) {
	dir := filepath.Join(b.cache, "bin", tp.Name+"-"+tp.Version)
	bin := filepath.Join(dir, tp.Binary)
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		b.logf("%s: using cached binary %s", tp.Name, bin)
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	// Build into a temporary GOBIN, then rename, so a build killed half-way
	// never leaves a binary that looks complete.
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	defer os.RemoveAll(tmp)
	b.logf("%s: building %s@%s from source; with a cold Go build cache this takes minutes (MinIO: about 3 on a quiet 2-core machine, 15 or more on a busy one), progress follows", tp.Name, tp.Module, tp.Version)
	cmd := exec.CommandContext(ctx, "go", "install", "-v", tp.Module+"@"+tp.Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+tmp, "GOFLAGS=-buildvcs=false")
	if err := b.runWithProgress(ctx, tp.Name, cmd); err != nil {
		return "", fmt.Errorf("images: go install %s@%s: %w", tp.Module, tp.Version, err)
	}
	if err := os.Rename(filepath.Join(tmp, tp.Binary), bin); err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	return bin, nil
}

// goBuild builds a binary of this repository and returns its path and the
// hex SHA-256 of its content (the image tag derives from it, so an image is
// rebuilt exactly when the binary changed).
func (b *builder) goBuild(ctx context.Context, o Own) (string, string, error) {
	dir := filepath.Join(b.cache, "own")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("images: %w", err)
	}
	bin := filepath.Join(dir, o.Name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, o.Package)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("images: go build %s: %w\n%s", o.Package, err, out)
	}
	f, err := os.Open(bin)
	if err != nil {
		return "", "", fmt.Errorf("images: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", fmt.Errorf("images: hash %s: %w", bin, err)
	}
	return bin, hex.EncodeToString(h.Sum(nil)), nil
}

// runWithProgress runs cmd, counting the package lines `go install -v`
// prints, and reports the count every 10 seconds.
func (b *builder) runWithProgress(ctx context.Context, name string, cmd *exec.Cmd) error {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var count int
	var tail []string
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			count++
			tail = append(tail, l)
			if len(tail) > 20 {
				tail = tail[1:]
			}
		case <-tick.C:
			b.logf("%s: %d packages compiled, %s elapsed", name, count, time.Since(start).Round(time.Second))
		case <-ctx.Done():
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%w; last output:\n%s", err, strings.Join(tail, "\n"))
	}
	b.logf("%s: built in %s (%d packages compiled, the rest from Go's build cache)", name, time.Since(start).Round(time.Second), count)
	return nil
}

// dockerBuild builds a FROM scratch image from a Dockerfile and files
// (name in the context -> host path; an empty path is an empty directory),
// streamed as a tar context.
func (b *builder) dockerBuild(ctx context.Context, ref, dockerfile string, files map[string]string) error {
	start := time.Now()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, dockerfile, files)) }()
	defer pr.Close()
	res, err := b.cli.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{ref},
		Remove:      true,
		ForceRemove: true,
		Dockerfile:  "Dockerfile",
		Labels:      map[string]string{"org.tierchaos.built-by": "harness"},
	})
	if err != nil {
		return fmt.Errorf("images: build %s: %w", ref, err)
	}
	defer res.Body.Close()
	if err := readJSONMessages(res.Body); err != nil {
		return fmt.Errorf("images: build %s: %w", ref, err)
	}
	b.logf("built image %s in %s", ref, time.Since(start).Round(time.Millisecond))
	return nil
}

func writeContext(w io.Writer, dockerfile string, files map[string]string) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		return err
	}
	for name, path := range files {
		if path == "" {
			if err := tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return err
			}
			continue
		}
		if err := addFile(tw, name, path); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: st.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// readJSONMessages drains a Docker build stream and returns the first error
// it reports.
func readJSONMessages(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// lockFile takes an exclusive flock on path, waiting until ctx is done, so
// that test processes running in parallel build each image once.
func lockFile(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("images: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("images: waiting for %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
