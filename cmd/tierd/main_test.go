package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// lookup returns an os.LookupEnv over env.
func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// TestDebugListenerAddress: the debug listener (pprof, /metrics) binds
// loopback unless configured, and "" or "off" disables it from flags,
// environment and YAML alike.
func TestDebugListenerAddress(t *testing.T) {
	dir := t.TempDir()
	yamlFile := func(v string) string {
		p := filepath.Join(dir, strings.ReplaceAll(v, `"`, "q")+".yaml")
		require.NoError(t, os.WriteFile(p, []byte("debug_addr: "+v+"\n"), 0o600))
		return p
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default is loopback", nil, nil, "127.0.0.1:6060"},
		{"env empty", map[string]string{"TIERD_DEBUG_ADDR": ""}, nil, ""},
		{"env off", map[string]string{"TIERD_DEBUG_ADDR": "off"}, nil, ""},
		{"env address", map[string]string{"TIERD_DEBUG_ADDR": "0.0.0.0:6060"}, nil, "0.0.0.0:6060"},
		{"flag empty", map[string]string{"TIERD_DEBUG_ADDR": ":7000"}, []string{"-debug-listen", ""}, ""},
		{"flag off", nil, []string{"-debug-listen=off"}, ""},
		{"yaml empty", map[string]string{"TIERD_CONFIG": yamlFile(`""`)}, nil, ""},
		{"yaml off", map[string]string{"TIERD_CONFIG": yamlFile("off")}, nil, ""},
		{"yaml address", map[string]string{"TIERD_CONFIG": yamlFile(`"127.0.0.1:7001"`)}, nil, "127.0.0.1:7001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := loadConfig(tc.args, lookup(tc.env), &bytes.Buffer{})
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.DebugListenAddr())
		})
	}
}

// TestGRPCListenerAddress: the gRPC listener binds :9090 unless
// configured, and "" or "off" disables it from flags, environment and YAML
// alike; -print-config shows it.
func TestGRPCListenerAddress(t *testing.T) {
	dir := t.TempDir()
	yamlFile := func(v string) string {
		p := filepath.Join(dir, strings.ReplaceAll(v, `"`, "q")+".yaml")
		require.NoError(t, os.WriteFile(p, []byte("grpc_addr: "+v+"\n"), 0o600))
		return p
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default", nil, nil, ":9090"},
		{"env empty", map[string]string{"TIERD_GRPC_ADDR": ""}, nil, ""},
		{"env off", map[string]string{"TIERD_GRPC_ADDR": "OFF"}, nil, ""},
		{"env address", map[string]string{"TIERD_GRPC_ADDR": "127.0.0.1:9191"}, nil, "127.0.0.1:9191"},
		{"flag wins", map[string]string{"TIERD_GRPC_ADDR": ":7000"}, []string{"-grpc-listen", ":7002"}, ":7002"},
		{"flag off", nil, []string{"-grpc-listen=off"}, ""},
		{"yaml off", map[string]string{"TIERD_CONFIG": yamlFile("off")}, nil, ""},
		{"yaml address", map[string]string{"TIERD_CONFIG": yamlFile(`"127.0.0.1:7003"`)}, nil, "127.0.0.1:7003"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := loadConfig(tc.args, lookup(tc.env), &bytes.Buffer{})
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.GRPCListenAddr())
		})
	}
	var out bytes.Buffer
	require.NoError(t, run([]string{"-print-config", "-grpc-listen", ":7004"}, lookup(nil), &out, &bytes.Buffer{}))
	require.Contains(t, out.String(), "grpc_addr: :7004")
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tierd.yaml")
	require.NoError(t, os.WriteFile(file, []byte("listen_addr: \":7000\"\ndebug_addr: \":7001\"\ns3:\n  bucket: from-file\n  op_timeout: 3s\n"), 0o600))
	env := map[string]string{"TIERD_CONFIG": file, "TIERD_DEBUG_ADDR": ":7101", "TIERD_S3_SECRET_KEY": "hunter2"}
	cases := []struct {
		name   string
		args   []string
		listen string
		debug  string
		bucket string
	}{
		{"file and env", nil, ":7000", ":7101", "from-file"},
		{"flags win", []string{"-listen", ":7200", "-s3-bucket", "from-flag"}, ":7200", ":7101", "from-flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, printOnly, err := loadConfig(tc.args, lookup(env), &bytes.Buffer{})
			require.NoError(t, err)
			require.False(t, printOnly)
			require.Equal(t, tc.listen, cfg.ListenAddr)
			require.Equal(t, tc.debug, cfg.DebugAddr)
			require.Equal(t, tc.bucket, cfg.S3.Bucket)
			require.Equal(t, "3s", cfg.S3.OpTimeout.D().String())
		})
	}
}

func TestPrintConfigMasksSecret(t *testing.T) {
	var out bytes.Buffer
	env := map[string]string{"TIERD_S3_SECRET_KEY": "hunter2", "TIERD_S3_ENDPOINT": "127.0.0.1:9000"}
	require.NoError(t, run([]string{"-print-config"}, lookup(env), &out, &bytes.Buffer{}))
	require.Contains(t, out.String(), "endpoint: 127.0.0.1:9000")
	require.Contains(t, out.String(), "secret_key: '*****'")
	require.NotContains(t, out.String(), "hunter2")
}

func TestInvalidConfigFailsClearly(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad env value", map[string]string{"TIERD_S3_OP_TIMEOUT": "soon"}, nil, "TIERD_S3_OP_TIMEOUT"},
		{"invalid value", map[string]string{"TIERD_S3_ENDPOINT": "http://minio:9000"}, nil, "s3.endpoint"},
		{"missing file", map[string]string{"TIERD_CONFIG": "/nonexistent/tierd.yaml"}, nil, "/nonexistent/tierd.yaml"},
		{"unknown flag", nil, []string{"-nope"}, "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, lookup(tc.env), &bytes.Buffer{}, &bytes.Buffer{})
			require.ErrorContains(t, err, tc.want)
		})
	}
}
