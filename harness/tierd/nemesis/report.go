package nemesis

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
)

// writeReport writes report.json, report.md and latency.png.
func writeReport(dir string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("nemesis: report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		return fmt.Errorf("nemesis: report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(Markdown(r)), 0o644); err != nil {
		return fmt.Errorf("nemesis: report: %w", err)
	}
	return writePNG(filepath.Join(dir, "latency.png"), r)
}

// Markdown renders the run: verdict, steps as applied, one table per
// phase with its budget lines, findings.
func Markdown(r *Result) string {
	var b strings.Builder
	verdict := "PASSED"
	if r.Failed() {
		verdict = fmt.Sprintf("FAILED (%d findings)", len(r.Findings))
	}
	p := r.Schedule.Profile
	fmt.Fprintf(&b, "# nemesis run: %s\n\n", verdict)
	api, _ := tierd.ParseAPI(string(r.Schedule.Traffic.API))
	fmt.Fprintf(&b, "Profile `%s`, seed %d, %s at %.0f req/s over %d collections (%s API); %d steps; %d requests, %d recorded operations; start lag p50 %s, p99 %s.\n\n",
		p.Name, r.Schedule.Seed, p.Length.D(), r.Schedule.Traffic.Rate, r.Schedule.Traffic.Collections, api,
		len(r.Schedule.Steps), r.Requests, r.Ops, r.StartLag.P50.Round(time.Microsecond), r.StartLag.P99.Round(time.Microsecond))
	b.WriteString("## Steps as applied\n\n| # | fault | start | end | lag | error |\n|---:|---|---:|---:|---:|---|\n")
	for _, a := range r.Applied {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", a.Step, a.Fault, a.Start.Round(time.Millisecond),
			a.End.Round(time.Millisecond), a.Lag.Round(time.Millisecond), a.Error)
	}
	b.WriteString("\n## Phases\n")
	for _, ph := range r.Phases {
		fmt.Fprintf(&b, "\n### %s\n\n%d operations, %d ok, %d errors; p50 %s, p95 %s, p99 %s",
			ph.Phase, ph.Ops, ph.OK, ph.Errors, ph.P50.Round(time.Microsecond), ph.P95.Round(time.Microsecond), ph.P99.Round(time.Microsecond))
		if len(ph.Codes) > 0 {
			fmt.Fprintf(&b, "; codes %v", ph.Codes)
		}
		b.WriteString("\n\n| operation | ops | errors | p95 |\n|---|---:|---:|---:|\n")
		for _, k := range ph.Kinds {
			fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", k.Kind, k.Ops, k.Errors, k.P95.Round(time.Microsecond))
		}
		if len(ph.Lines) > 0 {
			b.WriteString("\n| budget | limit | measured | |\n|---|---|---|---|\n")
			for _, l := range ph.Lines {
				ok := "ok"
				if !l.OK {
					ok = "**FAIL**"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", l.Gate, l.Budget, l.Measured, ok)
			}
		}
	}
	if r.Profiles != nil {
		fmt.Fprintf(&b, "\n## Profiles\n\nheap %d → %d bytes, goroutines %d → %d\n", r.Profiles.HeapStart, r.Profiles.HeapEnd,
			r.Profiles.GoroutinesStart, r.Profiles.GoroutinesEnd)
		for name, top := range r.Profiles.CPU {
			fmt.Fprintf(&b, "\n- CPU %s: %s", name, strings.Join(top, ", "))
		}
		b.WriteString("\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## No verdict\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if r.Failed() {
		b.WriteString("\n## Findings\n\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "- [%s] %s\n", f.Check, f.Message)
		}
	}
	return b.String()
}

// familyColor gives each fault family a translucent colour for the
// timeline's fault bands.
func familyColor(f fault.Family) color.RGBA {
	switch f {
	case fault.FamilyNet:
		return color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0x40}
	case fault.FamilyS3:
		return color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0x40}
	case fault.FamilyProcess:
		return color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0x50}
	case fault.FamilyWorker:
		return color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0x40}
	case fault.FamilyDisk:
		return color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0x40}
	}
	return color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0x40}
}

// writePNG draws latency percentiles per second (log scale) with the
// fault windows as coloured bands, one band row per family.
func writePNG(path string, r *Result) error {
	if r.Load == nil {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("nemesis %s seed %d: latency from scheduled start, fault windows", r.Schedule.Profile.Name, r.Schedule.Seed)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "latency (ms, log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	hi := 1.0
	for _, s := range []struct {
		name string
		get  func(time.Duration, time.Duration, time.Duration) time.Duration
		c    color.RGBA
	}{
		{"p50", func(a, _, _ time.Duration) time.Duration { return a }, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
		{"p95", func(_, b, _ time.Duration) time.Duration { return b }, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
		{"p99", func(_, _, c time.Duration) time.Duration { return c }, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
	} {
		var xy plotter.XYs
		for _, pt := range r.Load.Timeline {
			if pt.Completed == 0 {
				continue
			}
			y := math.Max(float64(s.get(pt.P50, pt.P95, pt.P99))/1e6, 0.01)
			hi = math.Max(hi, y)
			xy = append(xy, plotter.XY{X: pt.At.Seconds(), Y: y})
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("nemesis: plot: %w", err)
		}
		l.Color, l.Width = s.c, vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	fams := fault.Families()
	seen := map[fault.Family]bool{}
	for _, a := range r.Applied {
		if a.Kind == "" {
			continue
		}
		row := 0
		for i, f := range fams {
			if f == a.Family {
				row = i
			}
		}
		// Bands sit in the lower part of the log axis, one row per family.
		y0 := 0.01 * math.Pow(2, float64(row))
		y1 := y0 * 1.8
		end := math.Max(a.End.Seconds(), a.Start.Seconds()+0.2)
		poly, err := plotter.NewPolygon(plotter.XYs{{X: a.Start.Seconds(), Y: y0}, {X: end, Y: y0}, {X: end, Y: y1}, {X: a.Start.Seconds(), Y: y1}})
		if err != nil {
			return fmt.Errorf("nemesis: plot: %w", err)
		}
		poly.Color = familyColor(a.Family)
		poly.LineStyle.Width = 0
		p.Add(poly)
		if !seen[a.Family] {
			seen[a.Family] = true
			p.Legend.Add("fault: "+string(a.Family), poly)
		}
	}
	p.Y.Min, p.Y.Max = 0.01, hi*1.5
	img := vgimg.New(vg.Points(1000), vg.Points(500))
	p.Draw(draw.New(img))
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("nemesis: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("nemesis: write png: %w", err)
	}
	return f.Close()
}
