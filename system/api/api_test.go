package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"c1", true}, {"a", true}, {strings.Repeat("z", 64), true}, {"with_under-dash9", true},
		{"", false}, {strings.Repeat("z", 65), false}, {"Upper", false}, {"a/b", false}, {"a b", false},
		{"é", false}, {"..", false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.name), func(t *testing.T) {
			err := ValidateName(tc.name)
			require.Equal(t, tc.ok, err == nil, "%v", err)
		})
	}
}

func TestValidateValuesAndK(t *testing.T) {
	require.NoError(t, ValidateValues([]float32{1, 2}, 2))
	require.ErrorContains(t, ValidateValues([]float32{1}, 2), "dimension 1")
	require.ErrorContains(t, ValidateValues([]float32{1, float32(math.NaN())}, 2), "value 1")
	require.ErrorContains(t, ValidateValues([]float32{float32(math.Inf(-1)), 0}, 2), "value 0")
	for k, ok := range map[int]bool{0: false, 1: true, 1000: true, 1001: false, -5: false} {
		require.Equal(t, ok, ValidateK(k) == nil, "k=%d", k)
	}
}

func TestCodesAndStatuses(t *testing.T) {
	want := map[string]int{
		CodeInvalidArgument: http.StatusBadRequest, CodeNotFound: http.StatusNotFound,
		CodeAlreadyExists: http.StatusConflict, CodeTransitionInProgress: http.StatusConflict,
		CodePayloadTooLarge: http.StatusRequestEntityTooLarge, CodeQuotaExceeded: http.StatusTooManyRequests,
		CodeStorageUnavailable: http.StatusServiceUnavailable, CodeInsufficientStorage: http.StatusInsufficientStorage,
		CodeDataCorrupted: http.StatusInternalServerError, CodeInternal: http.StatusInternalServerError,
		CodeUnimplemented: http.StatusNotImplemented, CodeBucketNotFound: http.StatusServiceUnavailable,
	}
	for code, status := range want {
		require.Equal(t, status, HTTPStatus(code), code)
	}
	cause := errors.New("disk on fire")
	err := fmt.Errorf("outer: %w", Errorf(CodeStorageUnavailable, "put %s: %w", "k", cause))
	require.Equal(t, CodeStorageUnavailable, CodeOf(err))
	require.ErrorIs(t, err, cause)
	require.Equal(t, "put k: disk on fire", MessageOf(err))
	require.Equal(t, CodeInternal, CodeOf(errors.New("plain")))
}
