// Package reprodemo proves that the rerun line a failing chaos case prints
// reproduces the iteration that failed. Its demo case (build tags e2e and
// reprodemo) runs against the harness stack with tierd in the test
// process; in the iterations whose case seed draws "unlucky" it arms the
// planted defect that drops one acknowledged insert, and fails when the
// read-back misses that insert. The package's own test (build tag e2e
// alone) runs the demo with -count=5 and a run seed for which only
// iteration 3 is unlucky, then runs the printed rerun line ten times.
package reprodemo
