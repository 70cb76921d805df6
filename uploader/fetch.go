package uploader

import (
	"context"
	"fmt"
	"io"
)

// Fetch reads a whole object with the uploader's retry policy: retryable
// errors (including a body cut short, CodeTruncated) are retried with
// backoff within MaxRetries and a retry budget of its own; permanent ones
// (not found, access denied) are returned at once. The body's length is
// checked against the object's size.
func (u *ParallelUploader) Fetch(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	budget := &retryBudget{ratio: u.cfg.RetryBudgetRatio, min: int64(u.cfg.RetryBudgetMin)}
	budget.request()
	var (
		data []byte
		info ObjectInfo
	)
	_, err := u.retry(ctx, budget, string(OpGetObject), key, func(ctx context.Context) error {
		rc, oi, err := u.store.GetObject(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return readError(string(OpGetObject), key, err)
		}
		if oi.Size >= 0 && int64(len(b)) != oi.Size {
			return &StoreError{Op: string(OpGetObject), Key: key, Code: CodeTruncated,
				Err: fmt.Errorf("got %d of %d bytes: %w", len(b), oi.Size, io.ErrUnexpectedEOF)}
		}
		data, info = b, oi
		return nil
	})
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return data, info, nil
}

// FetchMember reads one batched member (see ReadMember) with the
// uploader's retry policy. A checksum mismatch is permanent: the member is
// never returned corrupted.
func (u *ParallelUploader) FetchMember(ctx context.Context, loc Location) ([]byte, error) {
	budget := &retryBudget{ratio: u.cfg.RetryBudgetRatio, min: int64(u.cfg.RetryBudgetMin)}
	budget.request()
	var data []byte
	_, err := u.retry(ctx, budget, "ReadMember", loc.Key, func(ctx context.Context) error {
		b, err := ReadMember(ctx, u.store, loc)
		data = b
		return err
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// readError classifies an error met while reading a response body.
func readError(op, key string, err error) error {
	if CodeOf(err) == CodeUnknown {
		// A body read failing for a reason we cannot name is a
		// broken transfer, not a property of the object.
		return &StoreError{Op: op, Key: key, Code: CodeTruncated, Err: err}
	}
	return err
}
