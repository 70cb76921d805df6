package s3fault

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkProxyOverhead compares requests sent straight to an in-memory
// upstream with the same requests through a Proxy that has one
// non-matching rule (so classification and rule evaluation run).
func BenchmarkProxyOverhead(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1<<20)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			_, _ = w.Write(payload)
		default:
			_, _ = io.Copy(io.Discard, r.Body)
		}
	}))
	b.Cleanup(upstream.Close)
	p, err := NewProxy(upstream.URL)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.AddRule(Rule{Ops: []Op{OpDeleteObject}, Trigger: Always(), Action: InternalError()}); err != nil {
		b.Fatal(err)
	}
	proxySrv := httptest.NewServer(p)
	b.Cleanup(func() {
		proxySrv.Close()
		p.Close()
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	for _, target := range []struct{ name, url string }{{"direct", upstream.URL}, {"proxy", proxySrv.URL}} {
		for _, op := range []struct {
			name   string
			method string
			body   []byte
			bytes  int64
		}{
			{"HEAD", http.MethodHead, nil, 0},
			{"GET-1MiB", http.MethodGet, nil, 1 << 20},
			{"PUT-1MiB", http.MethodPut, payload, 1 << 20},
		} {
			b.Run(target.name+"/"+op.name, func(b *testing.B) {
				b.SetBytes(op.bytes)
				b.ReportAllocs()
				for b.Loop() {
					var body io.Reader
					if op.body != nil {
						body = bytes.NewReader(op.body)
					}
					req, err := http.NewRequestWithContext(context.Background(), op.method, target.url+"/bucket/key", body)
					if err != nil {
						b.Fatal(err)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, resp.Body); err != nil {
						b.Fatal(err)
					}
					_ = resp.Body.Close()
				}
			})
		}
	}
}

// BenchmarkJournalRecord is the journal's cost on the request path: one
// entry into a full ring (the steady state), serially and from all cores.
func BenchmarkJournalRecord(b *testing.B) {
	e := Entry{At: time.Now(), Op: OpPutObject, Key: "collections/c1/snap.parquet", Rule: "r1",
		Action: ActionSlowDown, Status: 503, Code: "SlowDown"}
	b.Run("serial", func(b *testing.B) {
		j := newJournal(1024)
		for range 1024 {
			j.record(j.generation(), &e)
		}
		b.ReportAllocs()
		for b.Loop() {
			j.record(j.generation(), &e)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		j := newJournal(1024)
		for range 1024 {
			j.record(j.generation(), &e)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			e := e
			for pb.Next() {
				j.record(j.generation(), &e)
			}
		})
	})
}
