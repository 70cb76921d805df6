package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// EnvDebugHooks is the tierd setting that enables its crash points; stacks
// whose tests use CrashPoint set it in Options.TierdEnv.
const EnvDebugHooks = "TIERD_DEBUG_HOOKS"

// CrashPoint is one armed crash point of tierd's store (a store.Hook* name
// such as "cold.committed"): the next transition that reaches it blocks
// there, in a container or in process, until the point is released or
// tierd is killed. It lets a test SIGKILL tierd at a step no S3 request
// marks, for example after a demotion's manifest flip and before its local
// delete.
type CrashPoint struct {
	stack *Stack
	point string
}

type hooksState struct {
	Armed   []string `json:"armed"`
	Reached []string `json:"reached"`
}

// ArmCrashPoint arms point on tierd's debug listener. tierd must run with
// TIERD_DEBUG_HOOKS=true. The point is released at the end of the case by
// ClearFaults (and by any kill).
func (s *Stack) ArmCrashPoint(ctx context.Context, point string) (*CrashPoint, error) {
	body, err := json.Marshal(map[string]string{"point": point})
	if err != nil {
		return nil, err
	}
	if err := s.hooksRequest(ctx, http.MethodPost, body, nil); err != nil {
		return nil, fmt.Errorf("harness: arm crash point %s: %w", point, err)
	}
	return &CrashPoint{stack: s, point: point}, nil
}

// Reached waits until a transition is blocked at the point, or ctx ends.
func (cp *CrashPoint) Reached(ctx context.Context) error {
	for {
		var st hooksState
		if err := cp.stack.hooksRequest(ctx, http.MethodGet, nil, &st); err != nil {
			return fmt.Errorf("harness: crash point %s: %w", cp.point, err)
		}
		if slices.Contains(st.Reached, cp.point) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: crash point %s never reached: %w", cp.point, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ReleaseCrashPoints disarms every crash point and lets blocked transitions
// go on. It does nothing when tierd does not run with crash points.
func (s *Stack) ReleaseCrashPoints(ctx context.Context) error {
	err := s.hooksRequest(ctx, http.MethodDelete, nil, nil)
	if err != nil && !isNotFoundStatus(err) {
		return fmt.Errorf("harness: release crash points: %w", err)
	}
	return nil
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func isNotFoundStatus(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == http.StatusNotFound
}

func (s *Stack) hooksRequest(ctx context.Context, method string, body []byte, out any) error {
	base, err := s.DebugURL()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+"/debug/hooks", bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &statusError{status: resp.StatusCode, body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
