package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests and their latency by route and status code.
type httpMetrics struct {
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	unauthenticated prometheus.Counter
	overloaded      prometheus.Counter
	cancelled       prometheus.Counter
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierd_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tierd_http_request_duration_seconds", Help: "HTTP request latency by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "code"}),
		unauthenticated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierd_http_unauthenticated_total", Help: "API requests refused for a missing or wrong bearer token.",
		}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierd_http_overloaded_total", Help: "API requests refused because http.max_in_flight were being served.",
		}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierd_http_cancelled_total", Help: "API requests that ended because their client went away.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.unauthenticated, m.overloaded, m.cancelled)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument records every request; the route label is the matched mux
// pattern, so unknown paths do not create new series.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		code := strconv.Itoa(max(sw.status, http.StatusOK))
		if sw.status == 0 && r.Context().Err() != nil {
			code = "cancelled" // the client went away before an answer
		}
		s.metrics.requests.WithLabelValues(route, code).Inc()
		s.metrics.latency.WithLabelValues(route, code).Observe(time.Since(start).Seconds())
	})
}
