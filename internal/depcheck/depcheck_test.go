package depcheck

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMatching(t *testing.T) {
	deps := []string{"context", Module + "/harness/tierd", Module + "/harness/stack", Module + "/system/client",
		Module + "/systems", Module + "/examples/kvstore/kv", Module + "/harness/tierd/check", Module + "/load"}
	assert.Equal(t, []string{Module + "/harness/tierd", Module + "/system/client", Module + "/examples/kvstore/kv", Module + "/harness/tierd/check"},
		Matching(deps, Service), "a tree pattern matches its root and below; systems is not system")
}

func TestDeps(t *testing.T) {
	deps := Deps(t, "internal/depcheck", false)
	assert.Contains(t, deps, Module+"/internal/depcheck")
	assert.Contains(t, deps, "os/exec")
}
