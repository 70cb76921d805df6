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

// TestValidateNameShowsTheCharacter: the error names a non-ASCII
// character as the character, and an invalid UTF-8 byte as a byte.
func TestValidateNameShowsTheCharacter(t *testing.T) {
	cases := []struct {
		name, input string
		want        []string
		notWant     string
	}{
		{"accented letter", "café", []string{`'é'`, "at byte 3"}, `'Ã'`},
		{"accent first", "éa", []string{`'é'`, "at byte 0"}, `'Ã'`},
		{"emoji", "a🙂", []string{`'🙂'`, "at byte 1"}, `'ð'`},
		{"invalid utf-8", "a\xffb", []string{"invalid UTF-8 byte 0xff", "at byte 1"}, `'\ufffd'`},
		{"ascii", "a b", []string{`' '`, "at byte 1"}, "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateName(tc.input)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), tc.notWant)
		})
	}
}
