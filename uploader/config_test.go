package uploader

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigFromYAML(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, c Config)
		field string // non-empty: Validate must name it
	}{
		{"seed keys over defaults", `
batch: {enabled: false, batch_size: 25, flush_interval: 2s}
parallel: {concurrency: 32, max_retries: 5, backoff_base: 20ms}
pool: {pool_size: 64, idle_timeout: 30s}
`, func(t *testing.T, c Config) {
			assert.False(t, c.Batch.Enabled)
			assert.Equal(t, 25, c.Batch.Size)
			assert.Equal(t, 2*time.Second, c.Batch.FlushInterval)
			assert.Equal(t, int64(DefaultBatchMaxBytes), c.Batch.MaxBytes, "unset keys keep defaults")
			assert.True(t, c.Parallel.Enabled)
			assert.Equal(t, 32, c.Parallel.Concurrency)
			assert.Equal(t, 5, c.Parallel.MaxRetries)
			assert.Equal(t, 20*time.Millisecond, c.Parallel.BackoffBase)
			assert.Equal(t, 64, c.Pool.MaxIdleConns)
			assert.Equal(t, 30*time.Second, c.Pool.IdleTimeout)
		}, ""},
		{"empty document is the defaults", ``, func(t *testing.T, c Config) {
			assert.Equal(t, DefaultConfig(), c)
		}, ""},
		{"negative concurrency", `parallel: {concurrency: -1}`, nil, "parallel.concurrency"},
		{"tiny part size", `parallel: {part_size: 1024}`, nil, "parallel.part_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			require.NoError(t, yaml.Unmarshal([]byte(tc.doc), &c))
			err := c.Validate()
			if tc.field != "" {
				require.ErrorIs(t, err, ErrInvalidConfig)
				assert.Contains(t, err.Error(), tc.field)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}
