package server

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/tierchaos/tierchaos/uploader"
)

// errCrashed answers every object store request after Abandon.
var errCrashed = errors.New("tierd crashed (simulated): no more object store requests")

// haltableObjects forwards to an object store until halted, then fails
// every request at once without sending it, as a dead process sends none.
type haltableObjects struct {
	objs   uploader.ObjectStore
	halted atomic.Bool
}

func (h *haltableObjects) check(op, key string) error {
	if h.halted.Load() {
		return &uploader.StoreError{Op: op, Key: key, Code: uploader.CodeClosed, Err: errCrashed}
	}
	return nil
}

func (h *haltableObjects) PutObject(ctx context.Context, key string, data io.Reader, size int64, opts uploader.PutOptions) (uploader.ObjectInfo, error) {
	if err := h.check("PutObject", key); err != nil {
		return uploader.ObjectInfo{}, err
	}
	return h.objs.PutObject(ctx, key, data, size, opts)
}

func (h *haltableObjects) GetObject(ctx context.Context, key string) (io.ReadCloser, uploader.ObjectInfo, error) {
	if err := h.check("GetObject", key); err != nil {
		return nil, uploader.ObjectInfo{}, err
	}
	return h.objs.GetObject(ctx, key)
}

func (h *haltableObjects) GetObjectRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := h.check("GetObjectRange", key); err != nil {
		return nil, err
	}
	return h.objs.GetObjectRange(ctx, key, offset, length)
}

func (h *haltableObjects) StatObject(ctx context.Context, key string) (uploader.ObjectInfo, error) {
	if err := h.check("StatObject", key); err != nil {
		return uploader.ObjectInfo{}, err
	}
	return h.objs.StatObject(ctx, key)
}

func (h *haltableObjects) DeleteObject(ctx context.Context, key string) error {
	if err := h.check("DeleteObject", key); err != nil {
		return err
	}
	return h.objs.DeleteObject(ctx, key)
}

func (h *haltableObjects) ListObjects(ctx context.Context, prefix string) ([]uploader.ObjectInfo, error) {
	if err := h.check("ListObjects", prefix); err != nil {
		return nil, err
	}
	return h.objs.ListObjects(ctx, prefix)
}

func (h *haltableObjects) InitiateMultipart(ctx context.Context, key string, opts uploader.PutOptions) (string, error) {
	if err := h.check("InitiateMultipart", key); err != nil {
		return "", err
	}
	return h.objs.InitiateMultipart(ctx, key, opts)
}

func (h *haltableObjects) UploadPart(ctx context.Context, key, uploadID string, number int, data io.Reader, size int64, opts uploader.PartOptions) (uploader.Part, error) {
	if err := h.check("UploadPart", key); err != nil {
		return uploader.Part{}, err
	}
	return h.objs.UploadPart(ctx, key, uploadID, number, data, size, opts)
}

func (h *haltableObjects) CompleteMultipart(ctx context.Context, key, uploadID string, parts []uploader.Part) (uploader.ObjectInfo, error) {
	if err := h.check("CompleteMultipart", key); err != nil {
		return uploader.ObjectInfo{}, err
	}
	return h.objs.CompleteMultipart(ctx, key, uploadID, parts)
}

func (h *haltableObjects) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := h.check("AbortMultipart", key); err != nil {
		return err
	}
	return h.objs.AbortMultipart(ctx, key, uploadID)
}

func (h *haltableObjects) ListMultipartUploads(ctx context.Context, prefix string) ([]uploader.MultipartUpload, error) {
	if err := h.check("ListMultipartUploads", prefix); err != nil {
		return nil, err
	}
	return h.objs.ListMultipartUploads(ctx, prefix)
}

// Abandon stops this instance the way SIGKILL stops the process, for
// in-process tests that restart tierd on the same data folder and bucket:
// from its return on, the instance sends no object store request, writes
// nothing to the data folder (WAL records not yet written are dropped,
// nothing is flushed) and runs no worker cycle or background sweep.
// Requests still running get errors; what they had already written or
// uploaded stays, as after a real crash (an incomplete multipart upload is
// not aborted). Close may still be called afterwards to release the rest.
func (s *Server) Abandon() {
	s.ready.Store(false)
	if s.objects != nil {
		s.objects.halted.Store(true)
	}
	s.store.Halt()
	s.stop()
	s.worker.Stop()
	s.bg.Wait()
}
