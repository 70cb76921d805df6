// Command tierd is the tiered vector store under test: REST API on
// TIERD_LISTEN_ADDR, pprof and Prometheus metrics on TIERD_DEBUG_ADDR.
// Configuration: defaults, then the YAML file (-config or TIERD_CONFIG),
// then TIERD_* environment variables, then flags.
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

	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tierd:", err)
		os.Exit(1)
	}
}

// loadConfig builds the effective config from file, environment and flags.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (config.Config, bool, error) {
	fs := flag.NewFlagSet("tierd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv("TIERD_CONFIG"), "YAML config file (env TIERD_CONFIG)")
	printCfg := fs.Bool("print-config", false, "print the effective config as YAML and exit")
	listen := fs.String("listen", "", "REST listen address (env TIERD_LISTEN_ADDR)")
	debug := fs.String("debug-listen", "", "pprof/metrics listen address (env TIERD_DEBUG_ADDR)")
	dataDir := fs.String("data-dir", "", "data directory (env TIERD_DATA_DIR)")
	endpoint := fs.String("s3-endpoint", "", "S3 endpoint host:port (env TIERD_S3_ENDPOINT)")
	bucket := fs.String("s3-bucket", "", "S3 bucket (env TIERD_S3_BUCKET)")
	prefix := fs.String("s3-prefix", "", "S3 key prefix (env TIERD_S3_PREFIX)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, false, err
	}
	cfg := config.Default()
	var err error
	if *path != "" {
		if cfg, err = config.Load(cfg, *path); err != nil {
			return cfg, false, err
		}
	}
	if cfg, err = config.FromEnv(cfg, getenv); err != nil {
		return cfg, false, err
	}
	for _, f := range []struct {
		v   string
		dst *string
	}{{*listen, &cfg.ListenAddr}, {*debug, &cfg.DebugAddr}, {*dataDir, &cfg.DataDir}, {*endpoint, &cfg.S3.Endpoint}, {*bucket, &cfg.S3.Bucket}, {*prefix, &cfg.S3.Prefix}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, false, err
	}
	return cfg, *printCfg, nil
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, printOnly, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if printOnly {
		y, err := cfg.YAML()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, y)
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	cfg.ApplyProfileRates()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.ListenAddr, err)
	}
	apiSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	servers := []*http.Server{apiSrv}
	errc := make(chan error, 2)
	go func() { errc <- apiSrv.Serve(apiLn) }()
	if cfg.DebugAddr != "" {
		dbgLn, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", cfg.DebugAddr, err)
		}
		dbgSrv := &http.Server{Handler: srv.DebugHandler(), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, dbgSrv)
		go func() { errc <- dbgSrv.Serve(dbgLn) }()
	}
	log.Info("tierd started", "listen", apiLn.Addr().String(), "debug", cfg.DebugAddr, "data_dir", cfg.DataDir, "s3_endpoint", cfg.S3.Endpoint, "bucket", cfg.S3.Bucket)

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("server stopped", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	var errs []error
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, serveErr)
	}
	for _, hs := range servers {
		if err := hs.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := srv.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
