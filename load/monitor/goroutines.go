package monitor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// PprofGoroutines counts goroutines from a pprof endpoint's text goroutine
// profile (first line "goroutine profile: total N").
type PprofGoroutines struct {
	// BaseURL is the pprof root, e.g. http://127.0.0.1:6060/debug/pprof.
	BaseURL string
	Client  *http.Client
}

// Goroutines implements GoroutineCounter.
func (p PprofGoroutines) Goroutines(ctx context.Context) (int, error) {
	body, err := get(ctx, p.Client, strings.TrimRight(p.BaseURL, "/")+"/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	line, err := bufio.NewReader(io.LimitReader(body, 4096)).ReadString('\n')
	if err != nil && line == "" {
		return 0, fmt.Errorf("%w: goroutine profile: %w", ErrSample, err)
	}
	const prefix = "goroutine profile: total "
	if !strings.HasPrefix(line, prefix) {
		return 0, fmt.Errorf("%w: unexpected goroutine profile header %q", ErrSample, strings.TrimSpace(line))
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, prefix)))
	if err != nil {
		return 0, fmt.Errorf("%w: goroutine count: %w", ErrSample, err)
	}
	return n, nil
}

// MetricsGoroutines reads the go_goroutines gauge from a Prometheus
// text-format metrics endpoint.
type MetricsGoroutines struct {
	URL    string
	Client *http.Client
}

// Goroutines implements GoroutineCounter.
func (m MetricsGoroutines) Goroutines(ctx context.Context) (int, error) {
	body, err := get(ctx, m.Client, m.URL)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(body)
	if err != nil {
		return 0, fmt.Errorf("%w: parse metrics: %w", ErrSample, err)
	}
	f, ok := fams["go_goroutines"]
	if !ok || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetGauge() == nil {
		return 0, fmt.Errorf("%w: no go_goroutines gauge at %s", ErrSample, m.URL)
	}
	return int(f.GetMetric()[0].GetGauge().GetValue()), nil
}

func get(ctx context.Context, c *http.Client, url string) (io.ReadCloser, error) {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSample, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSample, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: GET %s: status %d", ErrSample, url, resp.StatusCode)
	}
	return resp.Body, nil
}
