// Command kvstore serves the example key-value store (package kv) on
// KVSTORE_LISTEN, keeping every key in the S3 bucket KVSTORE_S3_BUCKET at
// KVSTORE_S3_ENDPOINT. SIGTERM or SIGINT stops it gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tierchaos/tierchaos/examples/kvstore/kv"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("kvstore", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := kv.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	srv, err := kv.New(startCtx, cfg, log)
	cancel()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("kvstore serving", "addr", ln.Addr().String(), "bucket", cfg.Bucket, "unsafe_ack", cfg.UnsafeAck)
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(hs.Shutdown(sctx), srv.Close(sctx))
	log.Info("kvstore stopped", "err", err)
	return err
}
