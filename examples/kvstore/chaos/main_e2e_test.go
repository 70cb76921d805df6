//go:build e2e

package chaos

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/stack"
)

// env is the package's stack: MinIO, Toxiproxy, the S3 fault layer and
// the store.
var env *stack.Stack

func TestMain(m *testing.M) {
	os.Exit(stack.Main(m, stack.Options{Service: Service()}, func(s *stack.Stack) { env = s }))
}
