package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// proc is a running tierd binary.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

// startTierd runs the binary on dataDir and waits for its listen address.
func startTierd(t *testing.T, bin, dataDir string) *proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "TIERD_LISTEN_ADDR=127.0.0.1:0", "TIERD_GRPC_ADDR=127.0.0.1:0", "TIERD_DEBUG_ADDR=", "TIERD_DATA_DIR="+dataDir,
		"TIERD_S3_ENDPOINT=", "TIERD_WORKER_PAUSED=true")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "tierd started" {
				addr <- line.Listen
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return &proc{cmd: cmd, addr: a}
	case <-time.After(30 * time.Second):
		t.Fatal("tierd did not start")
		return nil
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()
}

// TestSIGKILLLosesNoAcknowledgedInsert builds tierd, loads it with
// concurrent inserts and tier changes, SIGKILLs it at a random moment,
// restarts it on the same data folder, and checks that every
// acknowledged insert is there; three times.
func TestSIGKILLLosesNoAcknowledgedInsert(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tierd binary")
	}
	bin := filepath.Join(t.TempDir(), "tierd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	dataDir := t.TempDir()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	const dim = 8
	acked := map[string][]float32{}
	var mu sync.Mutex
	created := false
	for round := range 3 {
		p := startTierd(t, bin, dataDir)
		c := client.New("http://" + p.addr)
		if !created {
			_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "k", Dimension: dim, Metric: api.MetricL2})
			require.NoError(t, err)
			created = true
		}
		// Everything acknowledged before the previous kill is there.
		got, err := c.GetCollection(ctx, "k")
		require.NoError(t, err, "round %d", round)
		require.GreaterOrEqual(t, got.Vectors, len(acked), "round %d: acknowledged inserts lost", round)
		res, err := c.Search(ctx, "k", make([]float32, dim), api.MaxK)
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, r := range res {
			seen[r.ID] = true
		}
		for id := range acked {
			require.True(t, seen[id], "round %d: acknowledged vector %s missing after SIGKILL", round, id)
		}

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					v := make([]float32, dim)
					for d := range v {
						v[d] = float32(i%7 + d)
					}
					if _, err := c.Insert(ctx, "k", []api.Vector{{ID: id, Values: v}}); err != nil {
						return // the kill
					}
					mu.Lock()
					acked[id] = v
					mu.Unlock()
				}
			})
		}
		wg.Go(func() {
			for _, tier := range []api.Tier{api.TierWarm, api.TierHot, api.TierWarm} {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.SetTier(ctx, "k", tier); err != nil {
					return
				}
			}
		})
		// Kill at a random point of the load: after a random number of
		// further acknowledged inserts (at most MaxK vectors in total, so
		// that one search sees them all).
		mu.Lock()
		target := len(acked) + 30 + rng.IntN(60)
		mu.Unlock()
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= target
		}, 30*time.Second, time.Millisecond)
		p.kill(t)
		close(stop)
		wg.Wait()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		t.Logf("round %d: killed with %d acknowledged vectors", round, n)
		require.Less(t, n, api.MaxK, "keep the collection within one search")
	}
	p := startTierd(t, bin, dataDir)
	c := client.New("http://" + p.addr)
	res, err := c.Search(ctx, "k", make([]float32, dim), api.MaxK)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, r := range res {
		seen[r.ID] = true
	}
	for id := range acked {
		require.True(t, seen[id], "acknowledged vector %s missing after the last SIGKILL", id)
	}
}
