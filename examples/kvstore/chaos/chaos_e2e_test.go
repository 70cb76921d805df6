//go:build e2e

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/examples/kvstore/kvclient"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/seed"
	"github.com/tierchaos/tierchaos/harness/stack"
)

// Shape of every row's workload.
const (
	clients   = 4
	keyCount  = 4
	opTimeout = 3 * time.Second // above the store's S3 timeout (2 s)
	pace      = 5 * time.Millisecond
	// checkTimeout bounds porcupine's search.
	checkTimeout = time.Minute
)

// rowTimeout bounds each row: its workload, fault, read-back and check.
const rowTimeout = 3 * time.Minute

// faultFunc injects a row's fault while the workload runs, waits (with
// deadlines) until it had an effect, heals it, and may stop the workload
// itself (w.stop) when what follows must not see writes.
type faultFunc func(ctx context.Context, t *testing.T, w *workload)

// TestKVStore runs every row against the store and checks each history
// for linearizability.
func TestKVStore(t *testing.T) {
	rows := []scenario.Scenario[*stack.Case]{
		{
			Name:    "s3-partition",
			Faults:  []scenario.Fault{scenario.Described("Toxiproxy: the store cut off S3 (connections closed, new ones refused) until writes fail, then healed")},
			Guards:  "writes fail while S3 is unreachable and succeed again once it is back; the history, read back after the partition, is linearizable",
			Timeout: rowTimeout,
			Run:     linearizable(partitionS3),
		},
		{
			Name:    "kill-during-write",
			Faults:  []scenario.Fault{scenario.Described("S3 writes and deletes held 200 ms each (S3 fault layer), the store killed with writes in flight, then started again on what S3 has")},
			Guards:  "a write acknowledged before the kill is never lost: the history, read back after the restart, is linearizable",
			Timeout: rowTimeout,
			Run:     linearizable(killDuringWrite),
		},
		{
			Name:    "flaky-s3-under-load",
			Faults:  []scenario.Fault{scenario.Described("S3 fault layer: 500 InternalError on 30% of the store's PUT, DELETE and GET requests, then removed")},
			Guards:  "a failed S3 request fails the operation (its outcome unknown) without breaking others; the history is linearizable",
			Timeout: rowTimeout,
			Run:     linearizable(flakyS3),
		},
	}
	scenario.Run(t, rows, func(t *testing.T, _ scenario.Scenario[*stack.Case]) *stack.Case { return env.NewCase(t) })
}

// linearizable is the Run of a row that injects fault: it runs the
// workload under the fault (runRow, keys named after the row) and requires
// successful writes and a linearizable history.
func linearizable(fault faultFunc) func(ctx context.Context, t *testing.T, c *stack.Case) {
	return func(ctx context.Context, t *testing.T, c *stack.Case) {
		name := path.Base(t.Name())
		res, st := runRow(ctx, t, c.Seed, c.Seed.Stream, name, fault, c.ArtifactDir)
		t.Logf("%s: %d operations checked, %+v", name, res.Ops, st)
		require.Positive(t, st.OKWrites, "writes succeeded")
		require.True(t, res.Linearizable(), "not linearizable (verdict %s); timeline: %s", res.Verdict, res.Timeline)
	}
}

// TestPlantedBugIsCaught runs the kill-during-write row with a fixed seed
// against the unsafe-ack variant of the store, which acknowledges a write
// before S3 has it: the kill loses acknowledged writes, and the checker
// must say that the history is not linearizable. TestKVStore's row passes
// against the correct store.
func TestPlantedBugIsCaught(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := env.NewCase(t) // restores the safe store when t ends
	require.NoError(t, env.Reconfigure(ctx, map[string]string{EnvUnsafeAck: "true"}))
	fixed := &seed.Case{Run: 1, Name: "planted-bug", Seed: 0x6b7673746f7265}
	rctx, rcancel := context.WithTimeout(context.Background(), rowTimeout)
	defer rcancel()
	res, st := runRow(rctx, t, c.Seed, fixed.Stream, "kill-during-write", killDuringWrite, t.TempDir())
	t.Logf("unsafe-ack: %d operations checked, %+v", res.Ops, st)
	require.Positive(t, st.OKWrites, "writes were acknowledged")
	require.Equal(t, porcupine.Illegal, res.Verdict, "the checker catches the writes the kill lost")
}

// runRow runs the workload under fault until ctx ends, reads every key
// back and checks the history. keys derive from the row's name and the
// case's seed, so that every iteration of a case has keys of its own on
// the shared bucket; the workload's choices come from streams.
func runRow(ctx context.Context, t *testing.T, cs *seed.Case, streams func(string) *rand.Rand, name string, fault faultFunc, dir string) (Result, Stats) {
	t.Helper()
	keys := make([]string, keyCount)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%x-%d", name, cs.Seed, i)
	}
	rec := NewRecorder()
	kc := kvclient.New("http://kvstore", &http.Client{Transport: env.Transport(PortAPI), Timeout: opTimeout})
	w := startWorkload(ctx, rec, kc, streams, keys)
	t.Cleanup(w.stop)
	fault(ctx, t, w)
	w.stop()
	readBack(ctx, t, rec.Client(clients, kc), keys)
	res, err := Check(rec.Ops(), checkTimeout, dir)
	require.NoError(t, err)
	return res, rec.Stats()
}

// workload is clients goroutines doing random operations on keys, each
// paced and with its own random stream.
type workload struct {
	rec    *Recorder
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func startWorkload(ctx context.Context, rec *Recorder, kc *kvclient.Client, streams func(string) *rand.Rand, keys []string) *workload {
	ctx, cancel := context.WithCancel(ctx)
	w := &workload{rec: rec, cancel: cancel}
	for i := range clients {
		c, rnd := rec.Client(i, kc), streams(fmt.Sprintf("client-%d", i))
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			runClient(ctx, c, i, rnd, keys)
		}()
	}
	return w
}

// stop ends the workload and waits for its clients.
func (w *workload) stop() {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
	})
}

// runClient does operations until ctx ends: reads 40%, puts 30%,
// compare-and-sets 20% (from the value it last saw), deletes 10%. Every
// written value is unique.
func runClient(ctx context.Context, c *Client, id int, rnd *rand.Rand, keys []string) {
	tick := time.NewTicker(pace)
	defer tick.Stop()
	seen := map[string]string{}
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key := keys[rnd.IntN(len(keys))]
		value := fmt.Sprintf("c%d-%d", id, seq)
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		switch p := rnd.IntN(10); {
		case p < 4:
			if v, ok, err := c.Get(octx, key); err == nil && ok {
				seen[key] = v
			}
		case p < 7:
			if c.Put(octx, key, value) == nil {
				seen[key] = value
			}
		case p < 9:
			if ok, err := c.CompareAndSet(octx, key, seen[key], value); err == nil && ok {
				seen[key] = value
			}
		default:
			_ = c.Delete(octx, key)
		}
		cancel()
	}
}

// readBack reads every key once the workload is over, retrying a read
// that got no answer (the store may just have restarted).
func readBack(ctx context.Context, t *testing.T, c *Client, keys []string) {
	t.Helper()
	for _, k := range keys {
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			rctx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			_, _, err := c.Get(rctx, k)
			assert.NoError(ct, err)
		}, time.Minute, 50*time.Millisecond, "read %s back", k)
	}
}

// waitFor waits until cond holds on the recorder's counts.
func waitFor(t *testing.T, w *workload, what string, cond func(Stats) bool) {
	t.Helper()
	require.Eventually(t, func() bool { return cond(w.rec.Stats()) }, time.Minute, 10*time.Millisecond,
		"%s (counts: %+v)", what, w.rec.Stats())
}

// partitionS3 cuts the store off S3 at Toxiproxy (every connection
// closed, new ones refused) until writes fail, then heals and waits for
// writes to succeed again.
func partitionS3(ctx context.Context, t *testing.T, w *workload) {
	waitFor(t, w, "writes succeed before the partition", func(s Stats) bool { return s.OKWrites >= 10 })
	f, err := env.Net.Down(ctx)
	require.NoError(t, err)
	before := w.rec.Stats()
	waitFor(t, w, "writes fail during the partition", func(s Stats) bool { return s.Unknown >= before.Unknown+3 })
	require.NoError(t, f.Remove(ctx))
	healed := w.rec.Stats()
	waitFor(t, w, "writes succeed after the partition", func(s Stats) bool { return s.OKWrites >= healed.OKWrites+10 })
}

// killDuringWrite lets the keys get values, then holds every S3 write
// for 200 ms in the S3 fault layer, so that writes are in flight, kills
// the store, stops the workload and starts the store again on what S3
// has.
func killDuringWrite(ctx context.Context, t *testing.T, w *workload) {
	waitFor(t, w, "writes succeed before the kill", func(s Stats) bool { return s.OKWrites >= 20 })
	_, err := env.S3Faults.AddRule(ctx, s3fault.Rule{
		Name: "slow-writes", Ops: []s3fault.Op{s3fault.OpPutObject, s3fault.OpDeleteObject},
		Trigger: s3fault.Always(), Action: s3fault.Delay(200*time.Millisecond, 0),
	})
	require.NoError(t, err)
	slowed := w.rec.Stats()
	waitFor(t, w, "writes succeed while S3 is slow", func(s Stats) bool { return s.OKWrites >= slowed.OKWrites+8 })
	require.NoError(t, env.KillService(ctx))
	w.stop()
	require.NoError(t, env.StartService(ctx))
}

// flakyS3 makes 30% of the store's S3 requests fail with 500 while the
// clients run, until the rule fired and writes both failed and
// succeeded, then removes it.
func flakyS3(ctx context.Context, t *testing.T, w *workload) {
	id, err := env.S3Faults.AddRule(ctx, s3fault.Rule{
		Name: "flaky", Ops: []s3fault.Op{s3fault.OpPutObject, s3fault.OpDeleteObject, s3fault.OpGetObject},
		Trigger: s3fault.Probability(0.3), Action: s3fault.InternalError(),
	})
	require.NoError(t, err)
	waitFor(t, w, "writes fail and succeed under flaky S3", func(s Stats) bool { return s.Unknown >= 5 && s.OKWrites >= 20 })
	rule, err := env.S3Faults.Rule(ctx, id)
	require.NoError(t, err)
	require.Positive(t, rule.Fired, "the rule fired")
	require.NoError(t, env.S3Faults.DeleteRule(ctx, id))
}
