package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzLoad loads a YAML document and then environment variables over the
// defaults, as tierd does (flags only set a few strings on top), and
// validates the result. Nothing panics; every error is of the ErrInvalid
// class; a valid config printed with YAML (as -print-config does) reads
// back to the same config, secrets aside (they print masked).
func FuzzLoad(f *testing.F) {
	f.Add([]byte("listen_addr: \":7000\"\ns3:\n  op_timeout: 3s\n"), "TIERD_DEBUG_ADDR=off")
	f.Add([]byte(""), "TIERD_API_TOKEN=0123456789abcdef0123\nTIERD_HTTP_MAX_IN_FLIGHT=5")
	f.Add([]byte("http:\n  write_timeout: 1s\n"), "TIERD_S3_OP_TIMEOUT=10")
	f.Add([]byte("auth:\n  api_token: short\n"), "")
	f.Add([]byte("debug_addr: \"\"\nquotas:\n  hot_bytes: -1\n"), "TIERD_QUOTA_HOT_BYTES=1GiB")
	f.Add([]byte("s3: [1, 2]\n"), "TIERD_WORKER_INTERVAL=soon")
	f.Add([]byte("worker:\n  hot_idle: &a 1s\n  warm_idle: *a\n"), "TIERD_DEBUG_ADDR=")
	f.Fuzz(func(t *testing.T, doc []byte, envText string) {
		env := map[string]string{}
		for _, line := range strings.Split(envText, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		lookup := func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}
		cfg, err := Decode(Default(), bytes.NewReader(doc), "fuzz.yaml")
		if err != nil {
			requireClass(t, err)
			return
		}
		if cfg, err = FromLookupEnv(cfg, lookup); err != nil {
			requireClass(t, err)
			return
		}
		if err := cfg.Validate(); err != nil {
			requireClass(t, err)
			return
		}
		_ = cfg.DebugListenAddr()
		out, err := cfg.YAML()
		if err != nil {
			t.Fatalf("YAML of a valid config: %v", err)
		}
		back, err := Decode(Config{}, strings.NewReader(out), "printed")
		if err != nil {
			t.Fatalf("the printed config does not read back: %v\n%s", err, out)
		}
		for _, p := range []struct {
			got  *string
			orig string
		}{
			{&back.S3.SecretKey, cfg.S3.SecretKey}, {&back.Auth.APIToken, cfg.Auth.APIToken}, {&back.Auth.AdminToken, cfg.Auth.AdminToken},
		} {
			if p.orig != "" && *p.got != mask {
				t.Fatalf("a secret printed unmasked: %q", *p.got)
			}
			*p.got = p.orig
		}
		if back != cfg {
			t.Fatalf("round trip changed the config:\nwant %+v\ngot  %+v\nprinted:\n%s", cfg, back, out)
		}
	})
}

func requireClass(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error without the ErrInvalid class: %v", err)
	}
}
