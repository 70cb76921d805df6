// Command datavold is the harness's data sidecar: it keeps Docker volumes
// mounted (a tmpfs volume of Docker's local driver is unmounted, and its
// content lost, when its last container stops) and serves what the test
// process needs of them over HTTP (see package harness/datavol): listings,
// file contents, statfs, filling to ENOSPC and freeing. It needs nothing
// else, so it runs in a FROM scratch image.
//
// Usage:
//
//	datavold -listen :9200 -volume service=/volumes/service -volume minio=/volumes/minio
//
// Exit status: 0 after SIGTERM or SIGINT, 1 when serving fails, 2 for bad
// flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tierchaos/tierchaos/harness/datavol"
)

// volumesFlag collects -volume name=dir flags.
type volumesFlag map[string]datavol.Dir

func (v volumesFlag) String() string {
	parts := make([]string, 0, len(v))
	for n, d := range v {
		parts = append(parts, n+"="+string(d))
	}
	return strings.Join(parts, ",")
}

func (v volumesFlag) Set(s string) error {
	name, dir, ok := strings.Cut(s, "=")
	if !ok || dir == "" || !strings.HasPrefix(dir, "/") {
		return fmt.Errorf("want name=/absolute/dir, got %q", s)
	}
	if err := datavol.CheckName(name); err != nil {
		return err
	}
	if _, dup := v[name]; dup {
		return fmt.Errorf("volume %q given twice", name)
	}
	v[name] = datavol.Dir(dir)
	return nil
}

// config is the parsed command line.
type config struct {
	listen  string
	volumes volumesFlag
}

// parseConfig parses the flags.
func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("datavold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{volumes: volumesFlag{}}
	fs.StringVar(&cfg.listen, "listen", ":9200", "listen address")
	fs.Var(cfg.volumes, "volume", "a volume to serve, name=/dir (repeatable)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(cfg.volumes) == 0 {
		return config{}, errors.New("no -volume given")
	}
	return cfg, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "datavold: %v\n", err)
		return 2
	}
	for name, dir := range cfg.volumes {
		if st, err := os.Stat(string(dir)); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "datavold: volume %s: %s is not a directory (%v)\n", name, dir, err)
			return 2
		}
	}
	h, err := datavol.NewHandler(cfg.volumes, log)
	if err != nil {
		fmt.Fprintf(stderr, "datavold: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		log.Error("listen", "addr", cfg.listen, "err", err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "volumes", cfg.volumes.String())
	select {
	case err := <-errc:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	return 0
}
