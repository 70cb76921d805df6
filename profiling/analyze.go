package profiling

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// Func is one function's share of a profile's values.
type Func struct {
	Name    string
	Flat    int64
	Cum     int64
	FlatPct float64
	CumPct  float64
}

// Top returns the n functions with the highest flat value of sampleType
// (e.g. "cpu", "inuse_space"; "" for the profile's default type).
func Top(p *profile.Profile, sampleType string, n int) ([]Func, error) {
	idx, err := valueIndex(p, sampleType)
	if err != nil {
		return nil, err
	}
	flat, cum, total := byFunction(p, idx)
	funcs := make([]Func, 0, len(cum))
	for name, c := range cum {
		f := Func{Name: name, Flat: flat[name], Cum: c}
		if total != 0 {
			f.FlatPct = 100 * float64(f.Flat) / float64(total)
			f.CumPct = 100 * float64(f.Cum) / float64(total)
		}
		funcs = append(funcs, f)
	}
	sort.Slice(funcs, func(i, j int) bool {
		if funcs[i].Flat != funcs[j].Flat {
			return funcs[i].Flat > funcs[j].Flat
		}
		if funcs[i].Cum != funcs[j].Cum {
			return funcs[i].Cum > funcs[j].Cum
		}
		return funcs[i].Name < funcs[j].Name
	})
	if n > 0 && len(funcs) > n {
		funcs = funcs[:n]
	}
	return funcs, nil
}

// TopSites is Top for block and mutex profiles: the flat value is charged
// not to the leaf frame, which is nearly always the same runtime or sync
// function (runtime.selectgo, sync.(*Mutex).Unlock), but to the first
// frame outside the runtime, sync and internal packages — the code that
// waited, or that held the lock. Cum is as in Top.
func TopSites(p *profile.Profile, sampleType string, n int) ([]Func, error) {
	idx, err := valueIndex(p, sampleType)
	if err != nil {
		return nil, err
	}
	_, cum, total := byFunction(p, idx)
	flat := map[string]int64{}
	for _, s := range p.Sample {
		flat[siteOf(s)] += s.Value[idx]
	}
	funcs := make([]Func, 0, len(flat))
	for name, f := range flat {
		fn := Func{Name: name, Flat: f, Cum: cum[name]}
		if total != 0 {
			fn.FlatPct = 100 * float64(fn.Flat) / float64(total)
			fn.CumPct = 100 * float64(fn.Cum) / float64(total)
		}
		funcs = append(funcs, fn)
	}
	sort.Slice(funcs, func(i, j int) bool {
		if funcs[i].Flat != funcs[j].Flat {
			return funcs[i].Flat > funcs[j].Flat
		}
		return funcs[i].Name < funcs[j].Name
	})
	if n > 0 && len(funcs) > n {
		funcs = funcs[:n]
	}
	return funcs, nil
}

// siteOf returns the first function of a sample's stack (leaf first) that
// is not in the runtime, sync or internal packages; the leaf when all are.
func siteOf(s *profile.Sample) string {
	leaf := ""
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function == nil {
				continue
			}
			name := line.Function.Name
			if leaf == "" {
				leaf = name
			}
			if !runtimeFrame(name) {
				return name
			}
		}
	}
	if leaf == "" {
		return "?"
	}
	return leaf
}

func runtimeFrame(name string) bool {
	for _, p := range []string{"runtime.", "sync.", "sync/atomic.", "internal/", "time.Sleep"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Total returns the sum of sampleType over all samples (for a heap
// profile and "inuse_space": the in-use heap bytes).
func Total(p *profile.Profile, sampleType string) (int64, error) {
	idx, err := valueIndex(p, sampleType)
	if err != nil {
		return 0, err
	}
	var t int64
	for _, s := range p.Sample {
		t += s.Value[idx]
	}
	return t, nil
}

// Delta is one function's change between two profiles.
type Delta struct {
	Name  string
	Delta int64
}

// Growth returns the n functions whose flat sampleType value grew most
// from base to end (e.g. in-use heap bytes by allocating function).
func Growth(base, end *profile.Profile, sampleType string, n int) ([]Delta, error) {
	bi, err := valueIndex(base, sampleType)
	if err != nil {
		return nil, err
	}
	ei, err := valueIndex(end, sampleType)
	if err != nil {
		return nil, err
	}
	bflat, _, _ := byFunction(base, bi)
	eflat, _, _ := byFunction(end, ei)
	names := map[string]bool{}
	for k := range bflat {
		names[k] = true
	}
	for k := range eflat {
		names[k] = true
	}
	var ds []Delta
	for name := range names {
		if d := eflat[name] - bflat[name]; d != 0 {
			ds = append(ds, Delta{Name: name, Delta: d})
		}
	}
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Delta != ds[j].Delta {
			return ds[i].Delta > ds[j].Delta
		}
		return ds[i].Name < ds[j].Name
	})
	if n > 0 && len(ds) > n {
		ds = ds[:n]
	}
	return ds, nil
}

// Merge combines profiles of one kind (e.g. several CPU windows).
func Merge(ps ...*profile.Profile) (*profile.Profile, error) {
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: nothing to merge", ErrParse)
	}
	m, err := profile.Merge(ps)
	if err != nil {
		return nil, fmt.Errorf("%w: merge: %w", ErrParse, err)
	}
	return m, nil
}

func valueIndex(p *profile.Profile, sampleType string) (int, error) {
	if p == nil || len(p.SampleType) == 0 {
		return 0, fmt.Errorf("%w: empty profile", ErrNoValue)
	}
	if sampleType == "" {
		return len(p.SampleType) - 1, nil
	}
	for i, st := range p.SampleType {
		if st.Type == sampleType {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrNoValue, sampleType)
}

// byFunction sums value idx per function: flat to the leaf frame, cum to
// every distinct function on the stack.
func byFunction(p *profile.Profile, idx int) (flat, cum map[string]int64, total int64) {
	flat, cum = map[string]int64{}, map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		seen := map[string]bool{}
		for li, loc := range s.Location {
			// Inlined functions: Line[0] is the innermost.
			for ln, line := range loc.Line {
				name := "?"
				if line.Function != nil {
					name = line.Function.Name
				}
				if li == 0 && ln == 0 {
					flat[name] += v
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
			if len(loc.Line) == 0 {
				name := fmt.Sprintf("0x%x", loc.Address)
				if li == 0 {
					flat[name] += v
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
	}
	return flat, cum, total
}
