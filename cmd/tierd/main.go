// Command tierd is the tiered vector store under test: REST API on
// TIERD_LISTEN_ADDR, gRPC API on TIERD_GRPC_ADDR (:9090 by default; "" or
// "off" disables it), pprof and Prometheus metrics on TIERD_DEBUG_ADDR
// (127.0.0.1:6060 by default; "" or "off" disables it).
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

	"google.golang.org/grpc"

	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
)

func main() {
	if err := run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tierd:", err)
		os.Exit(1)
	}
}

// loadConfig builds the effective config from file, environment and flags.
// lookupEnv is os.LookupEnv (tests pass a map): a variable set to "" is
// told from an unset one, so TIERD_DEBUG_ADDR= disables the debug listener.
func loadConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (config.Config, bool, error) {
	fs := flag.NewFlagSet("tierd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envPath, _ := lookupEnv("TIERD_CONFIG")
	path := fs.String("config", envPath, "YAML config file (env TIERD_CONFIG)")
	printCfg := fs.Bool("print-config", false, "print the effective config as YAML and exit")
	strFlags := map[string]func(*config.Config) *string{}
	strFlag := func(name, usage string, field func(*config.Config) *string) {
		fs.String(name, "", usage)
		strFlags[name] = field
	}
	strFlag("listen", "REST listen address (env TIERD_LISTEN_ADDR)", func(c *config.Config) *string { return &c.ListenAddr })
	strFlag("debug-listen", `pprof/metrics listen address; "" or "off" disables it (env TIERD_DEBUG_ADDR)`, func(c *config.Config) *string { return &c.DebugAddr })
	strFlag("grpc-listen", `gRPC listen address; "" or "off" disables it (env TIERD_GRPC_ADDR)`, func(c *config.Config) *string { return &c.GRPCAddr })
	strFlag("data-dir", "data directory (env TIERD_DATA_DIR)", func(c *config.Config) *string { return &c.DataDir })
	strFlag("s3-endpoint", "S3 endpoint host:port (env TIERD_S3_ENDPOINT)", func(c *config.Config) *string { return &c.S3.Endpoint })
	strFlag("s3-bucket", "S3 bucket (env TIERD_S3_BUCKET)", func(c *config.Config) *string { return &c.S3.Bucket })
	strFlag("s3-prefix", "S3 key prefix (env TIERD_S3_PREFIX)", func(c *config.Config) *string { return &c.S3.Prefix })
	strFlag("api-token", "bearer token of the API routes; prefer the environment, flags show in ps (env TIERD_API_TOKEN)", func(c *config.Config) *string { return &c.Auth.APIToken })
	strFlag("admin-token", "bearer token of /v1/admin/ routes (env TIERD_ADMIN_TOKEN)", func(c *config.Config) *string { return &c.Auth.AdminToken })
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
	if cfg, err = config.FromLookupEnv(cfg, lookupEnv); err != nil {
		return cfg, false, err
	}
	// A flag given explicitly wins, even when empty (-debug-listen "").
	fs.Visit(func(f *flag.Flag) {
		if field, ok := strFlags[f.Name]; ok {
			*field(&cfg) = f.Value.String()
		}
	})
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

func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	cfg, printOnly, err := loadConfig(args, lookupEnv, stderr)
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
	apiSrv := srv.HTTPServer()
	servers := []*http.Server{apiSrv}
	errc := make(chan error, 3)
	go func() { errc <- apiSrv.Serve(apiLn) }()
	debugAddr := "off"
	if addr := cfg.DebugListenAddr(); addr != "" {
		dbgLn, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		debugAddr = dbgLn.Addr().String()
		// No write timeout: a CPU profile or trace answers after its duration.
		dbgSrv := &http.Server{Handler: srv.DebugHandler(), ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout.D(), IdleTimeout: cfg.HTTP.IdleTimeout.D()}
		servers = append(servers, dbgSrv)
		go func() { errc <- dbgSrv.Serve(dbgLn) }()
	}
	grpcAddr := "off"
	var grpcSrv *grpc.Server
	if addr := cfg.GRPCListenAddr(); addr != "" {
		grpcLn, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		grpcAddr = grpcLn.Addr().String()
		grpcSrv = srv.GRPCServer()
		go func() { errc <- grpcSrv.Serve(grpcLn) }()
	}
	log.Info("tierd started", "listen", apiLn.Addr().String(), "grpc", grpcAddr, "debug", debugAddr, "data_dir", cfg.DataDir, "s3_endpoint", cfg.S3.Endpoint, "bucket", cfg.S3.Bucket)

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
	if grpcSrv != nil {
		if err := server.StopGRPC(sctx, grpcSrv); err != nil {
			errs = append(errs, err)
		}
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
