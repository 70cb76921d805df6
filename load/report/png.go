package report

import (
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// minPlotMS keeps empty ticks off the log scale.
const minPlotMS = 0.01

// WritePNG draws latency percentiles (log scale) and achieved vs target
// rate over time into a PNG file.
func WritePNG(path string, r *Report) error {
	lat := plot.New()
	lat.Title.Text = fmt.Sprintf("%s: latency from scheduled start", r.Name)
	lat.X.Label.Text = "time (s)"
	lat.Y.Label.Text = "latency (ms, log)"
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lat.Legend.Top = true
	lat.Add(plotter.NewGrid())

	series := []struct {
		name string
		get  func(Point) float64
		c    color.RGBA
	}{
		{"p50", func(p Point) float64 { return p.P50MS }, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
		{"p95", func(p Point) float64 { return p.P95MS }, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
		{"p99", func(p Point) float64 { return p.P99MS }, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
		{"max", func(p Point) float64 { return p.MaxMS }, color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}},
	}
	plotted := 0
	for _, s := range series {
		xy := make(plotter.XYs, 0, len(r.Timeline))
		for _, p := range r.Timeline {
			if p.Completed == 0 {
				continue
			}
			xy = append(xy, plotter.XY{X: p.AtS, Y: math.Max(s.get(p), minPlotMS)})
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("report: plot %s: %w", s.name, err)
		}
		l.Color = s.c
		l.Width = vg.Points(1.2)
		lat.Add(l)
		lat.Legend.Add(s.name, l)
		plotted++
	}
	if plotted == 0 {
		// Nothing completed: keep the log axis valid.
		lat.Y.Min, lat.Y.Max = minPlotMS, 1
	}

	rate := plot.New()
	rate.Title.Text = "rate"
	rate.X.Label.Text = "time (s)"
	rate.Y.Label.Text = "req/s"
	rate.Legend.Top = true
	rate.Add(plotter.NewGrid())
	done := make(plotter.XYs, 0, len(r.Timeline))
	errs := make(plotter.XYs, 0, len(r.Timeline))
	for i, p := range r.Timeline {
		span := p.AtS
		if i > 0 {
			span -= r.Timeline[i-1].AtS
		}
		done = append(done, plotter.XY{X: p.AtS, Y: p.Rate})
		e := 0.0
		if span > 0 {
			e = float64(p.Errors) / span
		}
		errs = append(errs, plotter.XY{X: p.AtS, Y: e})
	}
	if len(done) > 0 {
		l, err := plotter.NewLine(done)
		if err != nil {
			return fmt.Errorf("report: plot rate: %w", err)
		}
		l.Color = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
		rate.Add(l)
		rate.Legend.Add("completed/s", l)
		le, err := plotter.NewLine(errs)
		if err != nil {
			return fmt.Errorf("report: plot errors: %w", err)
		}
		le.Color = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
		rate.Add(le)
		rate.Legend.Add("errors/s", le)
		target := plotter.NewFunction(func(float64) float64 { return r.Run.Rate })
		target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		rate.Add(target)
		rate.Legend.Add("target", target)
	}
	rate.Y.Min = 0

	img := vgimg.New(vg.Points(900), vg.Points(700))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{lat}, {rate}}, tiles, dc)
	lat.Draw(canvases[0][0])
	rate.Draw(canvases[1][0])

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("report: write png: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
