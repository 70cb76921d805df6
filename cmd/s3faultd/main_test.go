package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/s3fault"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// testToken is the control token of the tests.
const testToken = "s3faultd-test-token-0123456789"

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		// noToken leaves S3FAULT_CONTROL_TOKEN out of env (the loop adds
		// testToken to the others, and to want).
		noToken bool
		want    config
		wantErr bool
	}{
		{
			name: "defaults",
			args: []string{"-upstream", "http://toxiproxy:8666"},
			want: config{s3Addr: ":9000", controlAddr: ":9100", upstream: "http://toxiproxy:8666",
				logLevel: slog.LevelInfo, shutdownTimeout: 10 * time.Second, journalSize: 100_000},
		},
		{
			name: "environment",
			env: map[string]string{"S3FAULT_UPSTREAM": "http://m:9000", "S3FAULT_S3_ADDR": ":1", "S3FAULT_CONTROL_ADDR": ":2",
				"S3FAULT_SEED": "18446744073709551615", "S3FAULT_LOG_LEVEL": "debug", "S3FAULT_LOG_FORMAT": "json",
				"S3FAULT_SHUTDOWN_TIMEOUT": "1m", "S3FAULT_JOURNAL_SIZE": "5"},
			want: config{s3Addr: ":1", controlAddr: ":2", upstream: "http://m:9000", seed: 1<<64 - 1,
				logLevel: slog.LevelDebug, logJSON: true, shutdownTimeout: time.Minute, journalSize: 5},
		},
		{
			name: "flags win over environment",
			args: []string{"-upstream", "http://a:1", "-seed", "7", "-s3-addr", "127.0.0.1:0", "-log-level", "warn", "-journal-size", "0"},
			env:  map[string]string{"S3FAULT_UPSTREAM": "http://b:2", "S3FAULT_SEED": "8", "S3FAULT_JOURNAL_SIZE": "9"},
			want: config{s3Addr: "127.0.0.1:0", controlAddr: ":9100", upstream: "http://a:1", seed: 7,
				logLevel: slog.LevelWarn, shutdownTimeout: 10 * time.Second},
		},
		{
			name: "credentials",
			env: map[string]string{"S3FAULT_UPSTREAM": "http://a:1", "S3FAULT_ACCESS_KEY": "ak", "S3FAULT_SECRET_KEY": "sk",
				"S3FAULT_REGION": "eu-west-1"},
			want: config{s3Addr: ":9000", controlAddr: ":9100", upstream: "http://a:1", logLevel: slog.LevelInfo,
				shutdownTimeout: 10 * time.Second, journalSize: 100_000, creds: s3fault.Credentials{AccessKey: "ak", SecretKey: "sk", Region: "eu-west-1"}},
		},
		{name: "access key without secret", env: map[string]string{"S3FAULT_UPSTREAM": "http://a:1", "S3FAULT_ACCESS_KEY": "ak"}, wantErr: true},
		{name: "secret without access key", env: map[string]string{"S3FAULT_UPSTREAM": "http://a:1", "S3FAULT_SECRET_KEY": "sk"}, wantErr: true},
		{name: "region without credentials", env: map[string]string{"S3FAULT_UPSTREAM": "http://a:1", "S3FAULT_REGION": "r"}, wantErr: true},
		{name: "missing upstream", wantErr: true},
		{name: "bad seed", args: []string{"-upstream", "http://a:1", "-seed", "-1"}, wantErr: true},
		{name: "bad env seed", env: map[string]string{"S3FAULT_UPSTREAM": "http://a:1", "S3FAULT_SEED": "x"}, wantErr: true},
		{
			name: "two random ports",
			args: []string{"-upstream", "http://a:1", "-s3-addr", "127.0.0.1:0", "-control-addr", "127.0.0.1:0"},
			want: config{s3Addr: "127.0.0.1:0", controlAddr: "127.0.0.1:0", upstream: "http://a:1",
				logLevel: slog.LevelInfo, shutdownTimeout: 10 * time.Second, journalSize: 100_000},
		},
		{name: "bad level", args: []string{"-upstream", "http://a:1", "-log-level", "loud"}, wantErr: true},
		{name: "bad format", args: []string{"-upstream", "http://a:1", "-log-format", "xml"}, wantErr: true},
		{name: "bad timeout", args: []string{"-upstream", "http://a:1", "-shutdown-timeout", "-1s"}, wantErr: true},
		{name: "negative journal size", args: []string{"-upstream", "http://a:1", "-journal-size", "-1"}, wantErr: true},
		{name: "bad env journal size", env: map[string]string{"S3FAULT_UPSTREAM": "http://a:1", "S3FAULT_JOURNAL_SIZE": "1e5"}, wantErr: true},
		{name: "same ports", args: []string{"-upstream", "http://a:1", "-s3-addr", ":1", "-control-addr", ":1"}, wantErr: true},
		{name: "unknown flag", args: []string{"-upstream", "http://a:1", "-verbose"}, wantErr: true},
		{name: "stray argument", args: []string{"-upstream", "http://a:1", "extra"}, wantErr: true},
		{name: "no control token", args: []string{"-upstream", "http://a:1"}, noToken: true, wantErr: true},
		{
			name: "short control token", args: []string{"-upstream", "http://a:1"}, noToken: true,
			env: map[string]string{"S3FAULT_CONTROL_TOKEN": "0123456789abcde"}, wantErr: true,
		},
		{
			name: "insecure control", args: []string{"-upstream", "http://a:1", "-insecure-control"}, noToken: true,
			want: config{s3Addr: ":9000", controlAddr: ":9100", upstream: "http://a:1", logLevel: slog.LevelInfo,
				shutdownTimeout: 10 * time.Second, journalSize: 100_000, insecureControl: true},
		},
		{
			name: "insecure control from env", args: []string{"-upstream", "http://a:1"}, noToken: true,
			env: map[string]string{"S3FAULT_INSECURE_CONTROL": "true"},
			want: config{s3Addr: ":9000", controlAddr: ":9100", upstream: "http://a:1", logLevel: slog.LevelInfo,
				shutdownTimeout: 10 * time.Second, journalSize: 100_000, insecureControl: true},
		},
		{name: "token and insecure control", args: []string{"-upstream", "http://a:1", "-insecure-control"}, wantErr: true},
		{
			name: "bad insecure control", args: []string{"-upstream", "http://a:1"}, noToken: true,
			env: map[string]string{"S3FAULT_INSECURE_CONTROL": "maybe"}, wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := maps.Clone(tt.env)
			if env == nil {
				env = map[string]string{}
			}
			if !tt.noToken {
				env["S3FAULT_CONTROL_TOKEN"] = testToken
				tt.want.controlToken = testToken
			}
			got, err := parseConfig(tt.args, envOf(env), io.Discard)
			if tt.wantErr {
				require.ErrorIs(t, err, errConfig)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := parseConfig([]string{"-h"}, envOf(nil), io.Discard)
	require.ErrorIs(t, err, flag.ErrHelp)
}

// TestServeRefusesControlWithoutToken: a configuration without a token
// and without insecureControl does not serve at all.
func TestServeRefusesControlWithoutToken(t *testing.T) {
	cfg := config{s3Addr: "127.0.0.1:0", controlAddr: "127.0.0.1:0", upstream: "http://127.0.0.1:1"}
	err := serve(t.Context(), cfg, slog.New(slog.DiscardHandler), func(_, _ net.Addr) {
		t.Error("serve listened without a control token")
	})
	require.ErrorIs(t, err, errConfig)
	require.ErrorIs(t, err, s3fault.ErrWeakToken)
}

func TestServeRejectsBadUpstream(t *testing.T) {
	cfg := config{s3Addr: "127.0.0.1:0", controlAddr: "127.0.0.1:0", upstream: "toxiproxy:8666"}
	err := serve(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
	require.ErrorIs(t, err, errConfig)
	require.ErrorIs(t, err, s3fault.ErrInvalidUpstream)
}

func TestServeProxiesAndShutsDown(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Host", r.Host)
		_, _ = io.WriteString(w, "from upstream")
	}))
	t.Cleanup(upstream.Close)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	cfg := config{s3Addr: "localhost:0", controlAddr: "localhost:0", upstream: upstream.URL, seed: 42,
		shutdownTimeout: 5 * time.Second, journalSize: 2, controlToken: testToken}
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(t.Output(), nil)), func(s3, ctl net.Addr) {
			addrs <- [2]net.Addr{s3, ctl}
		})
	}()
	var a [2]net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	}

	anon, err := s3fault.NewClient("http://" + a[1].String())
	require.NoError(t, err)
	_, err = anon.Health(ctx)
	require.ErrorIs(t, err, s3fault.ErrUnauthorized, "the control API wants the token")
	ctl, err := s3fault.NewClient("http://"+a[1].String(), s3fault.WithToken(testToken))
	require.NoError(t, err)
	h, err := ctl.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, upstream.URL, h.Upstream)
	seed, err := ctl.Seed(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(42), seed)

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	get := func() *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a[0].String()+"/b/k", nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp
	}
	resp := get()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, a[0].String(), resp.Header.Get("X-Seen-Host"))

	_, err = ctl.AddRule(ctx, s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGetObject}, Trigger: s3fault.Next(1), Action: s3fault.SlowDown(time.Second)})
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, get().StatusCode)
	st, err := ctl.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Op(s3fault.OpGetObject).Seen)
	assert.Equal(t, http.StatusOK, get().StatusCode)
	j, err := ctl.Journal(ctx)
	require.NoError(t, err)
	require.Len(t, j, 2, "the journal size reached the layer: the oldest of 3 was dropped")
	assert.Equal(t, []int{http.StatusServiceUnavailable, http.StatusOK}, []int{j[0].Status, j[1].Status})
	assert.Equal(t, "SlowDown", j[0].Code)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	_, err = ctl.Health(context.Background())
	require.Error(t, err, "control API closed")
	assert.False(t, errors.Is(err, context.Canceled))
}

// TestServeCredentialsEnableMisdirect proves the daemon hands its
// credentials to the layer: misdirect rules are refused without them and
// accepted with them.
func TestServeCredentialsEnableMisdirect(t *testing.T) {
	rule := s3fault.Rule{Ops: []s3fault.Op{s3fault.OpGetObject}, Trigger: s3fault.Next(1), Action: s3fault.Misdirect()}
	for _, tt := range []struct {
		name  string
		creds s3fault.Credentials
		ok    bool
	}{
		{name: "without credentials"},
		{name: "with credentials", creds: s3fault.Credentials{AccessKey: "ak", SecretKey: "sk"}, ok: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ctlAddr := make(chan net.Addr, 1)
			done := make(chan error, 1)
			cfg := config{s3Addr: "localhost:0", controlAddr: "localhost:0", upstream: "http://127.0.0.1:1",
				shutdownTimeout: 5 * time.Second, creds: tt.creds, controlToken: testToken}
			go func() {
				done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), func(_, ctl net.Addr) { ctlAddr <- ctl })
			}()
			var addr net.Addr
			select {
			case addr = <-ctlAddr:
			case err := <-done:
				t.Fatalf("serve ended early: %v", err)
			}
			ctl, err := s3fault.NewClient("http://"+addr.String(), s3fault.WithToken(testToken))
			require.NoError(t, err)
			_, err = ctl.AddRule(ctx, rule)
			if tt.ok {
				require.NoError(t, err)
			} else {
				var apiErr *s3fault.APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, s3fault.CodeActionNotApplicable, apiErr.Code)
			}
			cancel()
			require.NoError(t, <-done)
		})
	}
}
