// Command s3faultd runs the S3-aware fault layer: an S3 reverse proxy that
// injects S3-level faults (see harness/s3fault) and its JSON control API, on
// two ports of one process. It needs nothing from the filesystem, so it runs
// in a FROM scratch image.
//
// Configuration (a flag wins over its environment variable):
//
//	-s3-addr           S3FAULT_S3_ADDR           S3 listen address (default ":9000")
//	-control-addr      S3FAULT_CONTROL_ADDR      control API listen address (default ":9100")
//	-upstream          S3FAULT_UPSTREAM          upstream S3 URL, required (e.g. http://toxiproxy:8666)
//	-seed              S3FAULT_SEED              layer seed for rules without their own (default 0)
//	-log-level         S3FAULT_LOG_LEVEL         debug, info, warn or error (default info)
//	-log-format        S3FAULT_LOG_FORMAT        text or json (default text)
//	-shutdown-timeout  S3FAULT_SHUTDOWN_TIMEOUT  grace period for in-flight requests on SIGTERM (default 10s)
//	-journal-size      S3FAULT_JOURNAL_SIZE      requests kept in the request journal, 0 for none (default 100000)
//
// The control API needs a bearer token (see s3fault.NewControlHandler), from
// the environment only, so that it does not show in the process list:
//
//	S3FAULT_CONTROL_TOKEN  the token, at least 16 bytes; every control
//	                       request must send "Authorization: Bearer <token>"
//
// Without a token s3faultd refuses to start (exit status 2), unless
//
//	-insecure-control  S3FAULT_INSECURE_CONTROL  serve the control API without authentication (default false)
//
// is given, for a layer whose control port nobody else can reach; a token
// together with -insecure-control is refused as contradictory.
//
// Upstream credentials, from the environment only (no flags, so that the
// secret does not show in the process list). They sign the layer's own
// requests, which only the misdirect action makes (it lists the collection
// and reads another object); without them misdirect rules are refused.
// Forwarded requests always keep the client's own signature.
//
//	S3FAULT_ACCESS_KEY  access key id (set both or neither)
//	S3FAULT_SECRET_KEY  secret access key
//	S3FAULT_REGION      signing region (default: the region the client signed for, else us-east-1)
//
// Exit status: 0 after a clean shutdown, 1 when serving fails, 2 for bad
// configuration.
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
	"strconv"
	"syscall"
	"time"

	"github.com/tierchaos/tierchaos/harness/s3fault"
)

// config is the daemon's configuration.
type config struct {
	s3Addr          string
	controlAddr     string
	upstream        string
	seed            uint64
	logLevel        slog.Level
	logJSON         bool
	shutdownTimeout time.Duration
	// journalSize bounds the request journal (0: off).
	journalSize int
	// creds sign the layer's own upstream requests; zero: none.
	creds s3fault.Credentials
	// controlToken guards the control API; empty only with insecureControl.
	controlToken string
	// insecureControl serves the control API without a token.
	insecureControl bool
}

// errConfig marks configuration errors (exit status 2).
var errConfig = errors.New("s3faultd: invalid configuration")

// parseConfig reads the configuration from args and the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("s3faultd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		seed     = fs.String("seed", env("S3FAULT_SEED", "0"), "layer seed for rules without their own seed (env S3FAULT_SEED)")
		level    = fs.String("log-level", env("S3FAULT_LOG_LEVEL", "info"), "debug, info, warn or error (env S3FAULT_LOG_LEVEL)")
		format   = fs.String("log-format", env("S3FAULT_LOG_FORMAT", "text"), "text or json (env S3FAULT_LOG_FORMAT)")
		shutdown = fs.String("shutdown-timeout", env("S3FAULT_SHUTDOWN_TIMEOUT", "10s"), "grace period for in-flight requests (env S3FAULT_SHUTDOWN_TIMEOUT)")
		journal  = fs.String("journal-size", env("S3FAULT_JOURNAL_SIZE", strconv.Itoa(s3fault.DefaultJournalSize)),
			"requests kept in the request journal, 0 for none (env S3FAULT_JOURNAL_SIZE)")
	)
	insecureEnv := env("S3FAULT_INSECURE_CONTROL", "false")
	insecureDefault, insecureErr := strconv.ParseBool(insecureEnv)
	fs.BoolVar(&cfg.insecureControl, "insecure-control", insecureDefault,
		"serve the control API without a token: anyone reaching its port may change the faults (env S3FAULT_INSECURE_CONTROL)")
	fs.StringVar(&cfg.s3Addr, "s3-addr", env("S3FAULT_S3_ADDR", ":9000"), "S3 listen address (env S3FAULT_S3_ADDR)")
	fs.StringVar(&cfg.controlAddr, "control-addr", env("S3FAULT_CONTROL_ADDR", ":9100"), "control API listen address (env S3FAULT_CONTROL_ADDR)")
	fs.StringVar(&cfg.upstream, "upstream", env("S3FAULT_UPSTREAM", ""), "upstream S3 URL, e.g. http://toxiproxy:8666 (env S3FAULT_UPSTREAM, required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %w", errConfig, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("%w: unexpected arguments %q", errConfig, fs.Args())
	}
	if cfg.upstream == "" {
		return config{}, fmt.Errorf("%w: -upstream (or S3FAULT_UPSTREAM) is required", errConfig)
	}
	if _, port, err := net.SplitHostPort(cfg.s3Addr); err == nil && port != "0" && cfg.s3Addr == cfg.controlAddr {
		return config{}, fmt.Errorf("%w: -s3-addr and -control-addr are both %q", errConfig, cfg.s3Addr)
	}
	var err error
	if cfg.seed, err = strconv.ParseUint(*seed, 10, 64); err != nil {
		return config{}, fmt.Errorf("%w: seed %q: %w", errConfig, *seed, err)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return config{}, fmt.Errorf("%w: log level %q: %w", errConfig, *level, err)
	}
	switch *format {
	case "text":
	case "json":
		cfg.logJSON = true
	default:
		return config{}, fmt.Errorf("%w: log format %q: want text or json", errConfig, *format)
	}
	if cfg.shutdownTimeout, err = time.ParseDuration(*shutdown); err != nil || cfg.shutdownTimeout < 0 {
		return config{}, fmt.Errorf("%w: shutdown timeout %q: want a duration >= 0", errConfig, *shutdown)
	}
	if cfg.journalSize, err = strconv.Atoi(*journal); err != nil || cfg.journalSize < 0 {
		return config{}, fmt.Errorf("%w: journal size %q: want an integer >= 0", errConfig, *journal)
	}
	cfg.creds = s3fault.Credentials{
		AccessKey: getenv("S3FAULT_ACCESS_KEY"),
		SecretKey: getenv("S3FAULT_SECRET_KEY"),
		Region:    getenv("S3FAULT_REGION"),
	}
	if (cfg.creds.AccessKey == "") != (cfg.creds.SecretKey == "") {
		return config{}, fmt.Errorf("%w: set both S3FAULT_ACCESS_KEY and S3FAULT_SECRET_KEY, or neither", errConfig)
	}
	if cfg.creds.AccessKey == "" && cfg.creds.Region != "" {
		return config{}, fmt.Errorf("%w: S3FAULT_REGION needs S3FAULT_ACCESS_KEY and S3FAULT_SECRET_KEY", errConfig)
	}
	if insecureErr != nil {
		return config{}, fmt.Errorf("%w: S3FAULT_INSECURE_CONTROL %q: want true or false", errConfig, insecureEnv)
	}
	cfg.controlToken = getenv("S3FAULT_CONTROL_TOKEN")
	switch {
	case cfg.controlToken == "" && !cfg.insecureControl:
		return config{}, fmt.Errorf("%w: S3FAULT_CONTROL_TOKEN is required (or -insecure-control for a control API without authentication)", errConfig)
	case cfg.controlToken != "" && cfg.insecureControl:
		return config{}, fmt.Errorf("%w: S3FAULT_CONTROL_TOKEN and -insecure-control contradict each other", errConfig)
	case cfg.controlToken != "" && len(cfg.controlToken) < s3fault.MinTokenLen:
		return config{}, fmt.Errorf("%w: S3FAULT_CONTROL_TOKEN has %d bytes, want at least %d", errConfig, len(cfg.controlToken), s3fault.MinTokenLen)
	}
	return cfg, nil
}

// newLogger builds the daemon's logger.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs the proxy and the control API until ctx is done, then shuts
// both down gracefully. ready, if not nil, gets the bound addresses.
func serve(ctx context.Context, cfg config, log *slog.Logger, ready func(s3, control net.Addr)) error {
	opts := []s3fault.ProxyOption{s3fault.WithLogger(log), s3fault.WithSeed(cfg.seed), s3fault.WithJournalSize(cfg.journalSize)}
	hasCreds := cfg.creds.AccessKey != ""
	if hasCreds {
		opts = append(opts, s3fault.WithCredentials(cfg.creds))
	}
	proxy, err := s3fault.NewProxy(cfg.upstream, opts...)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	defer proxy.Close()
	var control http.Handler
	if cfg.insecureControl {
		log.Warn("s3faultd: the control API has no authentication (-insecure-control)")
		control = s3fault.NewInsecureControlHandler(proxy)
	} else if control, err = s3fault.NewControlHandler(proxy, cfg.controlToken); err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}

	var lc net.ListenConfig
	s3Ln, err := lc.Listen(ctx, "tcp", cfg.s3Addr)
	if err != nil {
		return fmt.Errorf("s3faultd: listen for S3 on %s: %w", cfg.s3Addr, err)
	}
	ctlLn, err := lc.Listen(ctx, "tcp", cfg.controlAddr)
	if err != nil {
		_ = s3Ln.Close()
		return fmt.Errorf("s3faultd: listen for control API on %s: %w", cfg.controlAddr, err)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	s3Srv := &http.Server{
		Handler: proxy,
		// No read or write timeout: bodies are large and injected delays
		// may be long. Only a stalled header is cut off.
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
	}
	ctlSrv := &http.Server{
		Handler:           control,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          errLog,
	}
	log.Info("s3faultd listening", "s3", s3Ln.Addr().String(), "control", ctlLn.Addr().String(),
		"upstream", proxy.Upstream(), "seed", cfg.seed, "credentials", hasCreds, "journal_size", cfg.journalSize,
		"control_auth", !cfg.insecureControl)
	if ready != nil {
		ready(s3Ln.Addr(), ctlLn.Addr())
	}

	errc := make(chan error, 2)
	go func() { errc <- s3Srv.Serve(s3Ln) }()
	go func() { errc <- ctlSrv.Serve(ctlLn) }()

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("s3faultd shutting down", "grace", cfg.shutdownTimeout)
	case serveErr = <-errc:
		serveErr = fmt.Errorf("s3faultd: serve: %w", serveErr)
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancel()
	var shutErr error
	for _, srv := range []*http.Server{s3Srv, ctlSrv} {
		if err := srv.Shutdown(shutCtx); err != nil {
			// Grace period over: drop what is still in flight.
			_ = srv.Close()
			shutErr = errors.Join(shutErr, fmt.Errorf("s3faultd: shutdown: %w", err))
		}
	}
	if serveErr != nil {
		return serveErr
	}
	if shutErr != nil {
		log.Warn("s3faultd forced shutdown", "err", shutErr)
	}
	log.Info("s3faultd stopped")
	return nil
}

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := newLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error("s3faultd failed", "err", err)
		stop()
		if errors.Is(err, errConfig) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
