package history

import "github.com/tierchaos/tierchaos/system/api"

// Final is the state read back from tierd after a run, when no operation is
// in flight any more. harness/tierd/check judges it against the history.
type Final struct {
	// Collections maps every collection of the history to its final state.
	Collections map[string]CollectionState `json:"collections"`
}

// CollectionState is one collection's final content.
type CollectionState struct {
	// Exists is false when the collection was not found.
	Exists bool `json:"exists"`
	// Vectors maps each id present to its values (exact, as
	// RecordingClient.ReadFinal lists them). A nil value means the id is
	// present but its values are unknown; the checkers then accept any
	// value for it.
	Vectors map[string][]float32 `json:"vectors,omitempty"`
}

// NewFinal builds a Final from collection contents read back as vector
// lists; the collections named in missing are recorded as not existing.
func NewFinal(found map[string][]api.Vector, missing ...string) Final {
	f := Final{Collections: make(map[string]CollectionState, len(found)+len(missing))}
	for name, vs := range found {
		st := CollectionState{Exists: true, Vectors: make(map[string][]float32, len(vs))}
		for _, v := range vs {
			st.Vectors[v.ID] = v.Values
		}
		f.Collections[name] = st
	}
	for _, name := range missing {
		f.Collections[name] = CollectionState{}
	}
	return f
}
