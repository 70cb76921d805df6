package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultIsValid(t *testing.T) {
	require.NoError(t, Default().Validate())
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"TIERD_LISTEN_ADDR":            ":9000",
		"TIERD_S3_ENDPOINT":            "127.0.0.1:9001",
		"TIERD_S3_USE_SSL":             "true",
		"TIERD_S3_OP_TIMEOUT":          "250ms",
		"TIERD_S3_PREFIX":              "p/",
		"TIERD_QUOTA_HOT_BYTES":        "64MiB",
		"TIERD_QUOTA_COLLECTIONS":      "7",
		"TIERD_BLOCK_PROFILE_RATE":     "10000",
		"TIERD_MUTEX_PROFILE_FRACTION": "10",
	}
	cfg, err := FromEnv(Default(), func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, ":9000", cfg.ListenAddr)
	require.Equal(t, "127.0.0.1:9001", cfg.S3.Endpoint)
	require.True(t, cfg.S3.UseSSL)
	require.Equal(t, 250*time.Millisecond, cfg.S3.OpTimeout.D())
	require.Equal(t, int64(64<<20), cfg.Quotas.HotBytes)
	require.Equal(t, 7, cfg.Quotas.Collections)
	require.Equal(t, 10000, cfg.BlockProfileRate)
	require.Equal(t, 10, cfg.MutexProfileFraction)
	require.Zero(t, Default().BlockProfileRate, "block profiling is off by default")
	require.Zero(t, Default().MutexProfileFraction, "mutex profiling is off by default")
	require.Equal(t, "tierd", cfg.S3.Bucket, "unset variables keep their defaults")
	require.NoError(t, cfg.Validate())
}

func TestFromEnvErrors(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"TIERD_S3_USE_SSL", "maybe", "TIERD_S3_USE_SSL"},
		{"TIERD_S3_OP_TIMEOUT", "10", "TIERD_S3_OP_TIMEOUT"},
		{"TIERD_QUOTA_COLLECTIONS", "many", "TIERD_QUOTA_COLLECTIONS"},
		{"TIERD_QUOTA_HOT_BYTES", "-5", "TIERD_QUOTA_HOT_BYTES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnv(Default(), func(k string) string {
				if k == tc.name {
					return tc.value
				}
				return ""
			})
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"endpoint with scheme", func(c *Config) { c.S3.Endpoint = "http://minio:9000" }, "s3.endpoint"},
		{"prefix without slash", func(c *Config) { c.S3.Prefix = "abc" }, "s3.prefix"},
		{"zero op timeout", func(c *Config) { c.S3.OpTimeout = 0 }, "s3.op_timeout"},
		{"small part size", func(c *Config) { c.S3.PartSize = 1024 }, "s3.part_size"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
		{"negative quota", func(c *Config) { c.Quotas.HotBytes = -1 }, "quotas"},
		{"max dimension", func(c *Config) { c.Limits.MaxDimension = 0 }, "max_dimension"},
		{"negative block profile rate", func(c *Config) { c.BlockProfileRate = -1 }, "block_profile_rate"},
		{"negative mutex profile fraction", func(c *Config) { c.MutexProfileFraction = -1 }, "mutex_profile_fraction"},
		{"write timeout below two S3 operations", func(c *Config) { c.HTTP.WriteTimeout = Duration(15 * time.Second) }, "http.write_timeout"},
		{"zero write timeout", func(c *Config) { c.HTTP.WriteTimeout = 0 }, "http.write_timeout"},
		{"read timeout below header timeout", func(c *Config) { c.HTTP.ReadTimeout = Duration(time.Second) }, "http.read_timeout"},
		{"zero header timeout", func(c *Config) { c.HTTP.ReadHeaderTimeout = 0 }, "http.read_header_timeout"},
		{"zero idle timeout", func(c *Config) { c.HTTP.IdleTimeout = 0 }, "http.idle_timeout"},
		{"no requests in flight", func(c *Config) { c.HTTP.MaxInFlight = 0 }, "http.max_in_flight"},
		{"short api token", func(c *Config) { c.Auth.APIToken = "short" }, "auth.api_token"},
		{"admin token with a space", func(c *Config) { c.Auth.AdminToken = "0123456789 abcdef" }, "auth.admin_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tierd.yaml")
	require.NoError(t, os.WriteFile(p, []byte("listen_addr: \":7000\"\ns3:\n  op_timeout: 3s\nquotas:\n  collections: 4\n"), 0o600))
	cfg, err := Load(Default(), p)
	require.NoError(t, err)
	require.Equal(t, ":7000", cfg.ListenAddr)
	require.Equal(t, 3*time.Second, cfg.S3.OpTimeout.D())
	require.Equal(t, 4, cfg.Quotas.Collections)
	require.Equal(t, "127.0.0.1:6060", cfg.DebugAddr)

	require.NoError(t, os.WriteFile(p, []byte("listen_adr: x\n"), 0o600))
	_, err = Load(Default(), p)
	require.ErrorContains(t, err, "listen_adr")

	require.NoError(t, os.WriteFile(p, []byte("s3:\n  op_timeout: soon\n"), 0o600))
	_, err = Load(Default(), p)
	require.ErrorContains(t, err, "soon")

	require.NoError(t, os.WriteFile(p, nil, 0o600))
	cfg, err = Load(Default(), p)
	require.NoError(t, err)
	require.Equal(t, Default(), cfg)
}

func TestExampleFileIsTheDefault(t *testing.T) {
	cfg, err := Load(Config{}, "tierd.example.yaml")
	require.NoError(t, err)
	require.Equal(t, Default(), cfg)
}
