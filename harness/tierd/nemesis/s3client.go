package nemesis

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
)

// Client-behaviour limits, judged from the S3 fault layer's journal of
// requests.
const (
	// retryHorizon: a request for the same operation and key this soon
	// after a refused one is a retry of it.
	retryHorizon = time.Second
	// hammerWindow and hammerMax: more than hammerMax requests for one
	// operation and key inside hammerWindow, while faults refuse them, is
	// hammering.
	hammerWindow = 100 * time.Millisecond
	hammerMax    = 3
	// minChains is how many retry chains the backoff growth needs to be
	// judged.
	minChains = 5
)

// writeOps are the operations whose keys name one upload attempt: a
// request for the same key soon after a refusal is that attempt retried.
func writeOps() []s3fault.Op {
	return []s3fault.Op{s3fault.OpPutObject, s3fault.OpUploadPart, s3fault.OpCreateMultipartUpload, s3fault.OpCompleteMultipartUpload}
}

// s3Client judges how tierd treated S3's refusals, from the fault layer's
// journal:
//   - a non-retryable 403 of an upload request is never retried;
//   - refused requests are not hammered (no more than hammerMax for one
//     operation and key within hammerWindow);
//   - retries of retryable refusals back off: over the retry chains, the
//     mean wait before the third and later retries exceeds the mean wait
//     before the first.
func s3Client(ctx context.Context, s *tierd.Stack, applied []Applied) []Finding {
	hasS3 := false
	for _, a := range applied {
		hasS3 = hasS3 || a.Family == "s3"
	}
	if !hasS3 {
		return nil
	}
	j, err := s.S3Faults.Journal(ctx)
	if err != nil {
		return []Finding{{Check: "s3client", Message: fmt.Sprintf("read the S3 fault layer's journal: %v", err)}}
	}
	return judgeJournal(j)
}

type opKey struct {
	op  s3fault.Op
	key string
}

// judgeJournal applies the client-behaviour rules to a journal.
func judgeJournal(j []s3fault.Entry) []Finding {
	var out []Finding
	byKey := map[opKey][]s3fault.Entry{}
	for _, e := range j {
		k := opKey{e.Op, e.Key}
		byKey[k] = append(byKey[k], e)
	}
	uploads := writeOps()
	var first, later []time.Duration
	retried403 := map[opKey]bool{}
	hammered := map[opKey]bool{}
	for k, es := range byKey {
		slices.SortFunc(es, func(a, b s3fault.Entry) int { return a.At.Compare(b.At) })
		chain := 0
		for i, e := range es {
			refused := e.Status >= 500 || e.Status == 403
			if i+1 < len(es) && refused {
				next := es[i+1]
				gap := next.At.Sub(e.At)
				if e.Status == 403 && slices.Contains(uploads, k.op) && gap <= retryHorizon && !retried403[k] {
					retried403[k] = true
					out = append(out, Finding{Check: "s3client", Message: fmt.Sprintf(
						"%s %s was retried %s after a non-retryable 403 %s", k.op, k.key, gap.Round(time.Millisecond), e.Code)})
				}
				if e.Status >= 500 && gap <= 10*time.Second {
					if chain == 0 {
						first = append(first, gap)
					} else if chain >= 2 {
						later = append(later, gap)
					}
					chain++
				} else {
					chain = 0
				}
			} else {
				chain = 0
			}
			if refused && !hammered[k] {
				n := 0
				for _, f := range es[i:] {
					if f.At.Sub(e.At) > hammerWindow {
						break
					}
					n++
				}
				if n > hammerMax {
					hammered[k] = true
					out = append(out, Finding{Check: "s3client", Message: fmt.Sprintf(
						"%s %s: %d requests within %s while S3 refused them (hammering)", k.op, k.key, n, hammerWindow)})
				}
			}
		}
	}
	if len(first) >= minChains && len(later) >= minChains {
		if mean(later) <= mean(first) {
			out = append(out, Finding{Check: "s3client", Message: fmt.Sprintf(
				"retries do not back off: mean wait before a first retry %s, before third and later retries %s (%d and %d samples)",
				mean(first).Round(time.Millisecond), mean(later).Round(time.Millisecond), len(first), len(later))})
		}
	}
	return out
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
