package depcheck

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMatching(t *testing.T) {
	deps := []string{"context", Module + "/harness", Module + "/harness/stack", Module + "/system/client",
		Module + "/systems", Module + "/examples/kvstore/kv", Module + "/load"}
	assert.Equal(t, []string{Module + "/harness", Module + "/system/client", Module + "/examples/kvstore/kv"},
		Matching(deps, Service), "harness/stack is below harness, which matches only itself; systems is not system")
}

func TestDeps(t *testing.T) {
	deps := Deps(t, "internal/depcheck", false)
	assert.Contains(t, deps, Module+"/internal/depcheck")
	assert.Contains(t, deps, "os/exec")
}
