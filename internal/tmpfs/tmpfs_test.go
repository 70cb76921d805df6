package tmpfs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tierchaos/tierchaos/internal/tmpfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "65536", want: 65536},
		{in: "4k", want: 4 << 10},
		{in: "1m", want: 1 << 20},
		{in: "256M", want: 256 << 20},
		{in: "1g", want: 1 << 30},
		{in: "", bad: true},
		{in: "0", bad: true},
		{in: "-1m", bad: true},
		{in: "1t", bad: true},
		{in: "1m,uid=0", bad: true},
		{in: "99999999999999999999", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tmpfs.ParseSize(tc.in)
			if tc.bad {
				require.ErrorIs(t, err, tmpfs.ErrBadSize)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNewRejectsBadSize(t *testing.T) {
	_, err := tmpfs.New(context.Background(), "1m,nr_inodes=1", tmpfs.ModeAuto)
	require.ErrorIs(t, err, tmpfs.ErrBadSize)
}
