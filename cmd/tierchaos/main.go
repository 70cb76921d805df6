// Command tierchaos holds the harness's day-to-day chores:
//
//	tierchaos images    make sure every image of the stack exists (build what is missing)
//	tierchaos cleanup   remove leftovers of dead runs (-all: of every run)
//	tierchaos junit     merge the JUnit files of make test's parts into one (-o FILE PART.xml...)
//	tierchaos summary   Markdown of the failing tests of go test -json files, with their rerun
//	                    commands and artifact folders (-artifacts DIR PART.json...)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/images"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tierchaos:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: tierchaos images | cleanup [-all] | junit [-o FILE] PART.xml... | summary [-artifacts DIR] PART.json...")
	}
	// The test-result commands need no Docker engine.
	switch args[0] {
	case "junit":
		return runJUnit(args[1:], os.Stdout)
	case "summary":
		return runSummary(args[1:], os.Stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli, err := dockerenv.Client(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	switch args[0] {
	case "images":
		fs := flag.NewFlagSet("images", flag.ContinueOnError)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		start := time.Now()
		set, err := images.Ensure(ctx, cli, images.Options{Progress: os.Stderr})
		if err != nil {
			return err
		}
		fmt.Printf("minio      %s\ntoxiproxy  %s\ntierd      %s\ns3faultd   %s\n", set.MinIO, set.Toxiproxy, set.Tierd, set.S3Fault)
		fmt.Printf("images ready in %s\n", time.Since(start).Round(time.Millisecond))
		return nil
	case "cleanup":
		fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
		all := fs.Bool("all", false, "remove the objects of every tierchaos run, live ones included")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var rep cleanup.Report
		if *all {
			rep, err = cleanup.RemoveAll(ctx, cli)
		} else {
			rep, err = cleanup.RemoveDead(ctx, cli)
		}
		fmt.Printf("removed %d containers, %d networks, %d volumes\n", rep.Containers, rep.Networks, rep.Volumes)
		return err
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}
