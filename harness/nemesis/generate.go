package nemesis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
)

// GenerateOptions are what a service's adapter adds to the generator.
type GenerateOptions struct {
	// Settings draws the environment of a reconfiguring restart
	// (process.reconfigure) from the service's own settings. Without it
	// no reconfiguring restart is drawn: the generator cannot know which
	// settings a service has.
	Settings func(r *rand.Rand) map[string]string
}

// Generate makes the schedule of seed and profile: the same seed, profile,
// traffic and options always give the same schedule (and the same file
// bytes).
//
// Fault starts follow a Poisson process of mean gap p.MeanGap inside
// [p.Quiet, p.Length-p.Recovery]; each start draws a family by weight among
// the families allowed at that moment (at most p.MaxOverlap faults in
// effect, and process, MinIO and disk faults never overlapping one of their
// own family), then a fault of that family: one of p.Faults when the
// profile lists faults, otherwise one with random parameters (narrowed to
// p.Kinds); window lengths are exponential with mean p.MeanFault and end
// before the recovery phase.
func Generate[T Traffic](seed uint64, p Profile, tr T, opts GenerateOptions) (Schedule[T], error) {
	if err := p.Validate(); err != nil {
		return Schedule[T]{}, err
	}
	if err := tr.Validate(); err != nil {
		return Schedule[T]{}, err
	}
	r := rand.New(rand.NewPCG(seed, 0x6e656d65736973)) // "nemesis"
	maxOverlap := max(p.MaxOverlap, 1)
	// Power cuts exist only for a service on a power-loss layer: a profile
	// draws them only when its Kinds name them.
	powerCuts := slices.Contains(p.Kinds, fault.KindPowerCut)
	end := p.Length.D() - p.Recovery.D()
	var active []busy
	var steps []Step
	t := p.Quiet.D()
	for {
		t += expDuration(r, p.MeanGap.D(), 100*time.Millisecond)
		if t >= end-200*time.Millisecond {
			break
		}
		live := active[:0]
		for _, a := range active {
			if a.until > t {
				live = append(live, a)
			}
		}
		active = live
		if len(active) >= maxOverlap {
			continue
		}
		var allowed []Weight
		for _, w := range p.Families {
			if !groupBusy(active, string(w.Family)) {
				allowed = append(allowed, w)
			}
		}
		if len(allowed) == 0 {
			continue
		}
		fam := pickFamily(r, allowed)
		f, err := drawFault(r, p, fam, powerCuts, opts)
		if err != nil {
			return Schedule[T]{}, err
		}
		st := Step{At: fault.Duration(t.Round(time.Millisecond)), Fault: fault.Spec{Fault: f}}
		hold := time.Second // an instant of an exclusive group keeps its group busy this long
		if !fault.IsInstant(f) {
			d := expDuration(r, p.MeanFault.D(), 200*time.Millisecond)
			d = min(d, 4*p.MeanFault.D(), end-t)
			if f.Kind() == fault.KindProcessPause {
				d = min(d, 3*time.Second) // a frozen service stalls every request
			}
			st.For = fault.Duration(d.Round(time.Millisecond))
			if st.For <= 0 {
				continue
			}
			hold = st.For.D()
		}
		steps = append(steps, st)
		if g := fault.Exclusive(f); g != "" {
			active = append(active, busy{until: t + hold, group: g})
		} else if !fault.IsInstant(f) {
			active = append(active, busy{until: t + hold})
		}
	}
	return Schedule[T]{Format: ScheduleFormat, Seed: seed, Profile: p, Traffic: tr, Steps: steps}, nil
}

// drawFault draws the fault of a start whose family is fam.
func drawFault(r *rand.Rand, p Profile, fam fault.Family, powerCuts bool, opts GenerateOptions) (fault.Fault, error) {
	if len(p.Faults) > 0 {
		var of []fault.Fault
		for _, f := range p.Faults {
			if f.Family() == fam {
				of = append(of, f.Fault)
			}
		}
		return of[r.IntN(len(of))], nil // Validate: every family has a fault
	}
	f := randomFault(r, fam, powerCuts, opts)
	for tries := 0; len(p.Kinds) > 0 && !slices.Contains(p.Kinds, f.Kind()); tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("%w: profile %q: no fault of family %s drawn among kinds %v", ErrSchedule, p.Name, fam, p.Kinds)
		}
		f = randomFault(r, fam, powerCuts, opts)
	}
	return f, nil
}

// busy is a fault in effect while generating: until when, and its
// exclusion group ("" for none).
type busy struct {
	until time.Duration
	group string
}

func groupBusy(active []busy, group string) bool {
	for _, a := range active {
		if a.group != "" && a.group == group {
			return true
		}
	}
	return false
}

func expDuration(r *rand.Rand, mean, floor time.Duration) time.Duration {
	d := time.Duration(r.ExpFloat64() * float64(mean))
	if d < floor {
		d = floor
	}
	if d > 20*mean {
		d = 20 * mean
	}
	return d
}

func pickFamily(r *rand.Rand, ws []Weight) fault.Family {
	var total float64
	for _, w := range ws {
		total += w.Weight
	}
	x := r.Float64() * total
	for _, w := range ws {
		if x < w.Weight {
			return w.Family
		}
		x -= w.Weight
	}
	return ws[len(ws)-1].Family
}

func ms(r *rand.Rand, lo, hi int) fault.Duration {
	return fault.Duration(time.Duration(lo+r.IntN(hi-lo+1)) * time.Millisecond)
}

func prob(r *rand.Rand, lo, hi float64) float64 {
	return math.Round((lo+r.Float64()*(hi-lo))*100) / 100
}

// randomFault draws a fault of the family with random parameters; with
// powerCuts, half the process faults are power cuts.
func randomFault(r *rand.Rand, fam fault.Family, powerCuts bool, opts GenerateOptions) fault.Fault {
	switch fam {
	case fault.FamilyNet:
		switch r.IntN(8) {
		case 0:
			lat := ms(r, 50, 800)
			return fault.Net{Toxic: "latency", Latency: lat, Jitter: ms(r, 0, min(200, int(lat.D()/time.Millisecond)))}
		case 1:
			return fault.Net{Toxic: "bandwidth", RateKBps: int64(16 + r.IntN(240))}
		case 2:
			return fault.Net{Toxic: "timeout", Timeout: ms(r, 0, 3000)}
		case 3:
			return fault.Net{Toxic: "reset_peer", Timeout: ms(r, 0, 200), Toxicity: prob(r, 0.2, 1)}
		case 4:
			return fault.Net{Toxic: "limit_data", Bytes: int64(1024 + r.IntN(64<<10))}
		case 5:
			return fault.Net{Toxic: "slow_close", Delay: ms(r, 100, 1000)}
		case 6:
			avg := 64 + r.IntN(960)
			return fault.Net{Toxic: "slicer", AvgSize: avg, SizeVariation: avg / 4, Delay: fault.Duration(time.Duration(100+r.IntN(4900)) * time.Microsecond)}
		default:
			return fault.Net{Toxic: "down"}
		}
	case fault.FamilyS3:
		seed := r.Uint64()
		switch r.IntN(9) {
		case 0:
			return fault.S3{Action: "slow_down", Probability: prob(r, 0.2, 1), RetryAfter: ms(r, 0, 1000), Seed: seed}
		case 1:
			return fault.S3{Action: "internal_error", Probability: prob(r, 0.2, 1), Seed: seed}
		case 2:
			ops := [][]s3fault.Op{nil, {s3fault.OpPutObject}, {s3fault.OpGetObject}, {s3fault.OpDeleteObject},
				{s3fault.OpCreateMultipartUpload, s3fault.OpUploadPart}}
			return fault.S3{Action: "access_denied", Ops: ops[r.IntN(len(ops))], Probability: prob(r, 0.1, 0.6), Seed: seed}
		case 3:
			return fault.S3{Action: "delay", Latency: ms(r, 50, 500), Jitter: ms(r, 0, 200), Seed: seed}
		case 4:
			return fault.S3{Action: "truncate_get", Bytes: int64(r.IntN(4096)), Probability: prob(r, 0.3, 1), Seed: seed}
		case 5:
			return fault.S3{Action: "flip_get", Flips: 1 + r.IntN(8), Probability: prob(r, 0.3, 1), Seed: seed}
		case 6:
			return fault.S3{Action: "misdirect", Probability: prob(r, 0.3, 1), Seed: seed}
		case 7:
			return fault.S3{Action: "cut_put", Bytes: int64(r.IntN(8192)), Probability: prob(r, 0.5, 1), Seed: seed}
		default:
			return fault.S3{Action: "cut_part", Bytes: int64(r.IntN(8192)), Probability: prob(r, 0.5, 1), Seed: seed}
		}
	case fault.FamilyProcess:
		if powerCuts && r.IntN(2) == 0 {
			return fault.PowerCut{Seed: r.Uint64(), Torn: r.IntN(2) == 0}
		}
		for {
			switch x := r.IntN(20); {
			case x < 9:
				return fault.Process{Action: "kill"}
			case x < 13:
				return fault.Process{Action: "restart"}
			case x < 17:
				return fault.Process{Action: "pause"}
			case opts.Settings != nil:
				return fault.Process{Action: "reconfigure", Env: opts.Settings(r)}
			}
		}
	case fault.FamilyWorker:
		if r.IntN(5) == 0 {
			return fault.Worker{Action: "pause"}
		}
		return fault.Worker{Action: "run_once"}
	case fault.FamilyDisk:
		return fault.Disk{}
	case fault.FamilyMinIO:
		if r.IntN(2) == 0 {
			return fault.MinIO{Action: "stop"}
		}
		return fault.MinIO{Action: "restart"}
	}
	panic("nemesis: unknown family " + string(fam)) // Profile.Validate admits only known families
}
