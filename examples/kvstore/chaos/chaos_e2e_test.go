//go:build e2e

package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/examples/kvstore/kvclient"
	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/nemesis"
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
	// backoff is a client's pause after an operation without an answer.
	backoff = 250 * time.Millisecond
	// checkTimeout bounds porcupine's search.
	checkTimeout = time.Minute
)

// rowTimeout bounds each row: its workload, fault, read-back and check.
const rowTimeout = 3 * time.Minute

// writes are the store's operations that change it.
var writes = []string{string(Put), string(Delete), string(CAS)}

// rows are the suite's declarative rows: each names the faults it injects
// as harness/fault values, runs the same traffic, and is judged by the
// same checks and by budgets per phase. TestKVStore runs them with their
// faults placed by their Timing; TestKVStoreNemesis runs the same rows
// under random schedules of their own faults.
func rows() []scenario.Scenario[*kvCase] {
	steady := nemesis.Budget{Phase: nemesis.PhaseSteady, MaxErrorRate: -1}
	// An operation called within one operation timeout of the last fault
	// may still meet it.
	recovery := nemesis.Budget{Phase: nemesis.PhaseRecovery, MaxErrorRate: -1, Grace: fault.Duration(opTimeout)}
	timing := scenario.Timing{Quiet: 2 * time.Second, Hold: 3 * time.Second, Gap: 2 * time.Second, Recovery: 6 * time.Second}
	together := timing
	together.Together = true
	checks := []scenario.Check[*kvCase]{
		{Name: "writes succeeded", Check: writesSucceeded},
		{Name: "linearizable", Check: linearizable},
	}
	return []scenario.Scenario[*kvCase]{
		{
			Name:    "s3-partition",
			Faults:  []scenario.Fault{fault.Net{Toxic: "down"}},
			Guards:  "writes fail while S3 is unreachable and succeed again within 5 s once it is back; no error without a fault; the history, read back afterwards, is linearizable",
			Traffic: traffic{}, Timing: timing, Checks: checks, Timeout: rowTimeout,
			Budgets: []nemesis.Budget{steady, recovery,
				{Phase: nemesis.FaultPhase(fault.FamilyNet), Ops: writes, MinErrors: 3, FirstOKWithin: fault.Duration(5 * time.Second)}},
		},
		{
			Name: "kill-during-write",
			Faults: []scenario.Fault{
				fault.S3{Action: "delay", Ops: []s3fault.Op{s3fault.OpPutObject, s3fault.OpDeleteObject}, Latency: fault.Duration(200 * time.Millisecond)},
				fault.Process{Action: "kill"},
			},
			Guards:  "a write acknowledged before the kill is never lost: the history, read back after the restart, is linearizable; no error without a fault",
			Traffic: traffic{}, Timing: together, Checks: checks, Timeout: rowTimeout,
			// The delay alone fails nothing (200 ms is far below the
			// operation timeout): errors while it is in effect are the
			// writes in flight at the kill.
			Budgets: []nemesis.Budget{steady, recovery, {Phase: nemesis.FaultPhase(fault.FamilyS3), MinErrors: 1}},
		},
		{
			Name:    "flaky-s3-under-load",
			Faults:  []scenario.Fault{fault.S3{Action: "internal_error", Ops: []s3fault.Op{s3fault.OpPutObject, s3fault.OpDeleteObject, s3fault.OpGetObject}, Probability: 0.3}},
			Guards:  "a failed S3 request fails the operation (its outcome unknown) without breaking others; no error without a fault; the history is linearizable",
			Traffic: traffic{}, Timing: timing, Checks: checks, Timeout: rowTimeout,
			Budgets: []nemesis.Budget{steady, recovery, {Phase: nemesis.FaultPhase(fault.FamilyS3), Ops: writes, MinErrors: 5}},
		},
	}
}

// TestKVStore runs every row with its faults placed by its Timing.
func TestKVStore(t *testing.T) {
	scenario.Run(t, rows(), newKVCase)
}

// flagReplay reruns one schedule file of TestKVStoreNemesis.
var flagReplay = flag.String("kvstore.replay", "", "TestKVStoreNemesis: run this schedule file (its row, its steps) instead of random ones")

// TestKVStoreNemesis runs the same rows under random schedules drawn from
// each row's own faults and the case's seed (pin it with -chaos.case-seed
// to replay a schedule's traffic exactly).
func TestKVStoreNemesis(t *testing.T) {
	scenario.RunNemesis(t, rows(), newKVCase, scenario.NemesisOptions{Length: 16 * time.Second, Replay: *flagReplay})
}

// TestPlantedBugIsCaught runs the kill-during-write row with a fixed seed
// against the unsafe-ack variant of the store, which acknowledges a write
// before S3 has it: the kill loses acknowledged writes, and the
// linearizability check must say so. The row's faults are placed so that
// its traffic ends as soon as the store is back (writes held from 2 s to
// 3 s, the kill at 2.5 s, no recovery phase): the read-back then meets
// the values the kill lost before new writes can replace them.
// TestKVStore's row passes against the correct store.
func TestPlantedBugIsCaught(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), rowTimeout)
	defer cancel()
	sc := env.NewCase(t) // restores the safe store when t ends
	require.NoError(t, env.Reconfigure(ctx, map[string]string{EnvUnsafeAck: "true"}))
	fixed := &seed.Case{Run: 1, Name: "planted-bug", Seed: 0x6b7673746f7265}
	c := caseFor(sc, "planted-bug", fixed, t.TempDir())
	row := rows()[1]
	require.Equal(t, "kill-during-write", row.Name)
	row.Timing = scenario.Timing{Quiet: 2 * time.Second, Hold: time.Second, Recovery: time.Millisecond, Together: true}
	steps, length, err := row.Steps()
	require.NoError(t, err)
	out, err := scenario.Execute(ctx, row, c, steps, length, nil)
	require.NoError(t, err)
	t.Logf("unsafe-ack: %d operations, %+v, findings: %v", out.Ops, c.recorder().Stats(), out.Findings)
	require.Positive(t, c.recorder().Stats().OKWrites, "writes were acknowledged")
	require.True(t, slices.ContainsFunc(out.Findings, func(f string) bool {
		return strings.HasPrefix(f, "check linearizable: not linearizable (verdict "+string(porcupine.Illegal)+")")
	}), "the checker catches the writes the kill lost: %v", out.Findings)
}

// kvCase is a row's case: the stack's case (its faults go to the stack),
// the row's keys, the store's client, and the record of the current run.
type kvCase struct {
	*stack.Case
	keys    []string
	kc      *kvclient.Client
	streams func(string) *rand.Rand
	dir     string
	mu      sync.Mutex
	rec     *Recorder
}

// newKVCase prepares a row's case on the shared stack.
func newKVCase(t *testing.T, s scenario.Scenario[*kvCase]) *kvCase {
	sc := env.NewCase(t)
	return caseFor(sc, s.Name, sc.Seed, sc.ArtifactDir)
}

// caseFor makes the case of a row named name: keys derived from the name
// and the seed, so that every iteration of a case has keys of its own on
// the shared bucket, and the workload's choices from the seed's streams.
func caseFor(sc *stack.Case, name string, cs *seed.Case, dir string) *kvCase {
	keys := make([]string, keyCount)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%x-%d", name, cs.Seed, i)
	}
	kc := kvclient.New("http://kvstore", &http.Client{Transport: env.Transport(PortAPI), Timeout: opTimeout})
	return &kvCase{Case: sc, keys: keys, kc: kc, streams: cs.Stream, dir: dir, rec: NewRecorder()}
}

func (c *kvCase) recorder() *Recorder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

// traffic is clients goroutines doing random operations on the case's
// keys.
type traffic struct{}

func (traffic) String() string {
	return fmt.Sprintf("%d clients, an operation every %s each on %d keys: get 40%%, put 30%%, cas 20%%, delete 10%%", clients, pace, keyCount)
}

// Start records afresh into the case and starts the clients.
func (traffic) Start(ctx context.Context, c *kvCase) (scenario.Load, error) {
	rec := NewRecorder()
	c.mu.Lock()
	c.rec = rec
	c.mu.Unlock()
	return &kvLoad{rec: rec, w: startWorkload(ctx, rec, c.kc, c.streams, c.keys)}, nil
}

// kvLoad is the traffic running.
type kvLoad struct {
	rec *Recorder
	w   *workload
}

func (l *kvLoad) Stop()             { l.w.stop() }
func (l *kvLoad) Now() int64        { return l.rec.Now() }
func (l *kvLoad) Ops() []nemesis.Op { return l.rec.Judged() }

// writesSucceeded requires acknowledged writes: a history without them
// would be linearizable whatever the store does.
func writesSucceeded(_ context.Context, c *kvCase, _ scenario.Execution) error {
	if st := c.recorder().Stats(); st.OKWrites == 0 {
		return fmt.Errorf("no write succeeded (%+v)", st)
	}
	return nil
}

// linearizable reads every key back and checks the history.
func linearizable(ctx context.Context, c *kvCase, _ scenario.Execution) error {
	rec := c.recorder()
	if err := readBack(ctx, rec.Client(clients, c.kc), c.keys); err != nil {
		return err
	}
	res, err := Check(rec.Ops(), checkTimeout, c.dir)
	if err != nil {
		return err
	}
	if !res.Linearizable() {
		return fmt.Errorf("not linearizable (verdict %s); timeline: %s", res.Verdict, res.Timeline)
	}
	return nil
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
// written value is unique. After an operation without an answer the
// client waits backoff before its next one, as a real client would: a
// store that is down is not hammered, and the history does not fill with
// writes of unknown outcome that porcupine must each try both ways.
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
		var err error
		switch p := rnd.IntN(10); {
		case p < 4:
			var v string
			var ok bool
			if v, ok, err = c.Get(octx, key); err == nil && ok {
				seen[key] = v
			}
		case p < 7:
			if err = c.Put(octx, key, value); err == nil {
				seen[key] = value
			}
		case p < 9:
			var ok bool
			if ok, err = c.CompareAndSet(octx, key, seen[key], value); err == nil && ok {
				seen[key] = value
			}
		default:
			err = c.Delete(octx, key)
		}
		cancel()
		if err != nil && kvclient.Indeterminate(err) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// readBack reads every key once the workload is over, retrying a read
// that got no answer (the store may just have restarted) for a minute.
func readBack(ctx context.Context, c *Client, keys []string) error {
	for _, k := range keys {
		deadline := time.Now().Add(time.Minute)
		for {
			rctx, cancel := context.WithTimeout(ctx, opTimeout)
			_, _, err := c.Get(rctx, k)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("read %s back: %w", k, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
