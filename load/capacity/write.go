package capacity

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/report"
)

// Files written by Write.
const (
	JSONFile = "capacity.json"
	MDFile   = "capacity.md"
	PNGFile  = "capacity.png"
)

// minPlotMS keeps a zero p95 off the log scale.
const minPlotMS = 0.01

// StageOf reads a stage's figures from its load report and budget.
func StageOf(rep *report.Report, br budget.Report) Stage {
	st := Stage{Held: br.Passed(), AchievedRate: rep.Overall.AchievedRate, ErrorRate: rep.Overall.ErrorRate,
		P95MS: map[string]float64{"all": rep.Overall.Latency.P95MS}}
	for _, o := range rep.Ops {
		st.P95MS[o.Name] = o.Latency.P95MS
	}
	for _, l := range br.Failed() {
		name := l.Name
		if l.Op != "" {
			name = l.Op + " " + l.Name
		}
		st.Failed = append(st.Failed, name)
	}
	return st
}

// Write writes capacity.json, capacity.md and capacity.png into dir and
// returns their paths.
func Write(dir string, r *Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	paths := []string{filepath.Join(dir, JSONFile), filepath.Join(dir, MDFile), filepath.Join(dir, PNGFile)}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("capacity: encode: %w", err)
	}
	if err := os.WriteFile(paths[0], append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	if err := os.WriteFile(paths[1], []byte(Markdown(r)), 0o644); err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	if err := WritePNG(paths[2], r); err != nil {
		return nil, err
	}
	return paths, nil
}

// Verdict is the search's one-line answer.
func (r *Result) Verdict() string {
	switch {
	case r.ReachedMax:
		return fmt.Sprintf("held every budget up to the search's maximum, %.4g req/s (capacity is at least that)", r.MaxHeld)
	case r.MaxHeld == 0 && r.MinFailed > 0:
		return fmt.Sprintf("the start rate %.4g req/s already failed a budget (lower -find-start)", r.MinFailed)
	case r.MinFailed == 0:
		return fmt.Sprintf("highest rate that held every budget: %.4g req/s (no stage failed before the stage limit)", r.MaxHeld)
	default:
		return fmt.Sprintf("highest rate that held every budget: %.4g req/s (lowest failed: %.4g req/s)", r.MaxHeld, r.MinFailed)
	}
}

// Markdown renders the stages as a table, by rate.
func Markdown(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Capacity search\n\n**%s.**\n\n", r.Verdict())
	p := r.Plan
	fmt.Fprintf(&b, "Plan: start %.4g req/s, ×%.3g per held stage up to %.4g req/s, then bisection to %.3g%% of the held rate; at most %d stages",
		p.Start, p.Factor, p.Max, 100*p.Resolution, p.MaxStages)
	if r.StageDuration > 0 {
		fmt.Fprintf(&b, " of %v each", r.StageDuration)
	}
	b.WriteString(".\n\n")
	ops := r.Ops()
	b.WriteString("| stage | rate | achieved/s | errors |")
	for _, op := range ops {
		fmt.Fprintf(&b, " %s p95 |", op)
	}
	b.WriteString(" result |\n|---:|---:|---:|---:|")
	for range ops {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, s := range r.ByRate() {
		fmt.Fprintf(&b, "| %d | %.4g | %.1f | %.3g%% |", s.Index, s.Rate, s.AchievedRate, 100*s.ErrorRate)
		for _, op := range ops {
			if v, ok := s.P95MS[op]; ok {
				fmt.Fprintf(&b, " %.2fms |", v)
			} else {
				b.WriteString(" |")
			}
		}
		if s.Held {
			b.WriteString(" held |\n")
		} else {
			fmt.Fprintf(&b, " **failed**: %s |\n", strings.Join(s.Failed, ", "))
		}
	}
	fmt.Fprintf(&b, "\n![p95 per operation against rate](%s)\n", PNGFile)
	return b.String()
}

var palette = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, {R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, {R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// WritePNG plots each operation's p95 (log scale) against the stage rate,
// failed stages marked with crosses, and the highest held rate as a
// dashed vertical line.
func WritePNG(path string, r *Result) error {
	p := plot.New()
	p.Title.Text = "capacity search: p95 per operation against rate"
	p.X.Label.Text = "target rate (req/s)"
	p.Y.Label.Text = "p95 latency (ms, log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	stages := r.ByRate()
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, op := range r.Ops() {
		var line, failed plotter.XYs
		for _, s := range stages {
			v, ok := s.P95MS[op]
			if !ok {
				continue
			}
			xy := plotter.XY{X: s.Rate, Y: math.Max(v, minPlotMS)}
			lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
			line = append(line, xy)
			if !s.Held {
				failed = append(failed, xy)
			}
		}
		if len(line) == 0 {
			continue
		}
		c := palette[i%len(palette)]
		lp, sp, err := plotter.NewLinePoints(line)
		if err != nil {
			return fmt.Errorf("capacity: plot %s: %w", op, err)
		}
		lp.Color, sp.Color = c, c
		if op == "all" {
			lp.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		}
		p.Add(lp, sp)
		p.Legend.Add(op, lp, sp)
		if len(failed) > 0 {
			f, err := plotter.NewScatter(failed)
			if err != nil {
				return fmt.Errorf("capacity: plot %s: %w", op, err)
			}
			f.Shape = draw.CrossGlyph{}
			f.Radius = vg.Points(5)
			f.Color = c
			p.Add(f)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = minPlotMS, 1
	}
	p.Y.Min, p.Y.Max = lo/1.5, hi*1.5
	if r.MaxHeld > 0 {
		v, err := plotter.NewLine(plotter.XYs{{X: r.MaxHeld, Y: p.Y.Min}, {X: r.MaxHeld, Y: p.Y.Max}})
		if err != nil {
			return fmt.Errorf("capacity: plot held rate: %w", err)
		}
		v.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		v.Color = color.RGBA{A: 0xff}
		p.Add(v)
		p.Legend.Add(fmt.Sprintf("held %.4g req/s", r.MaxHeld), v)
	}
	if err := p.Save(vg.Points(800), vg.Points(500), path); err != nil {
		return fmt.Errorf("capacity: write png: %w", err)
	}
	return nil
}
