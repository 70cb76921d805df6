package tierd

import (
	"testing"

	"github.com/tierchaos/tierchaos/harness/scenario"
)

// CaseFor is the newCase of the tierd suites' scenario tables
// (scenario.Run(t, rows, stack.CaseFor)): NewVariantCase with the row's
// Variant.
func (s *Stack) CaseFor(t *testing.T, sc scenario.Scenario[*Case]) *Case {
	t.Helper()
	return s.NewVariantCase(t, sc.Variant)
}

// NewVariantCase is the case of a scenario row whose Variant is variant:
// NewCase on the shared stack with its client on the API variant names
// ("" or "rest": REST, "grpc": gRPC; anything else fails t). It logs the
// mode tierd runs in.
func (s *Stack) NewVariantCase(t *testing.T, variant string) *Case {
	t.Helper()
	api, err := ParseAPI(variant)
	if err != nil {
		t.Fatalf("the row's variant: %v", err)
	}
	t.Logf("mode: %s", s.Mode)
	return s.NewCase(t, WithAPI(api))
}
