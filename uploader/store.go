// Package uploader moves snapshot objects to and from S3-compatible object
// storage: the ObjectStore abstraction with a MinIO implementation and an
// in-memory implementation with fault injection, error classification, and
// the parallel and batch uploaders that tierd uses for its cold tier.
package uploader

import (
	"context"
	"io"
	"time"
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// Key is the object's key in the bucket.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ETag is the store's entity tag, without quotes: the MD5 hex of a
	// single-PUT object, "<md5 of part md5s>-<parts>" of a multipart one.
	ETag string
	// LastModified is when the object was stored.
	LastModified time.Time
	// Metadata holds user metadata (without the x-amz-meta- prefix), keys
	// canonicalised to lower case.
	Metadata map[string]string
}

// PutOptions carries optional settings for a PutObject call.
type PutOptions struct {
	// Metadata is stored as user metadata with the object.
	Metadata map[string]string
	// ContentType of the object; empty means application/octet-stream.
	ContentType string
	// ContentMD5, if set, is the MD5 digest (16 bytes) of the body of a
	// PutObject. It is sent as Content-MD5, and the store refuses a body
	// that does not match it (S3 BadDigest: CodeChecksumMismatch), so
	// bytes changed on the way are never stored. InitiateMultipart ignores
	// it (parts carry their own, see PartOptions).
	ContentMD5 []byte
}

// PartOptions carries optional settings for an UploadPart call.
type PartOptions struct {
	// ContentMD5, if set, is the MD5 digest of the part's body; see
	// PutOptions.ContentMD5.
	ContentMD5 []byte
}

// Part identifies one uploaded part of a multipart upload.
type Part struct {
	// Number is the 1-based part number.
	Number int
	// ETag is the part's entity tag, as CompleteMultipart needs it.
	ETag string
	// Size is the part's length in bytes.
	Size int64
}

// MultipartUpload describes an initiated, not yet completed or aborted,
// multipart upload.
type MultipartUpload struct {
	// Key is the object the upload will create.
	Key string
	// UploadID identifies the upload.
	UploadID string
	// Initiated is when the upload was started.
	Initiated time.Time
}

// ObjectStore is the set of S3 operations tierd and the uploaders need.
// Implementations must be safe for concurrent use. Errors are classified
// by Classify (see errors.go) into retryable and permanent ones.
type ObjectStore interface {
	// PutObject stores data of the given size under key, replacing any
	// existing object atomically: readers see the old or the new object.
	PutObject(ctx context.Context, key string, data io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// GetObject returns a reader over the object's bytes. The caller closes it.
	GetObject(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// GetObjectRange returns length bytes starting at offset.
	GetObjectRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// StatObject returns an object's info without its body.
	StatObject(ctx context.Context, key string) (ObjectInfo, error)
	// DeleteObject removes key; deleting a missing key is not an error.
	DeleteObject(ctx context.Context, key string) error
	// ListObjects lists the objects whose key starts with prefix, in key order.
	ListObjects(ctx context.Context, prefix string) ([]ObjectInfo, error)

	// InitiateMultipart starts a multipart upload for key.
	InitiateMultipart(ctx context.Context, key string, opts PutOptions) (uploadID string, err error)
	// UploadPart uploads part number (1-based) of an upload.
	UploadPart(ctx context.Context, key, uploadID string, number int, data io.Reader, size int64, opts PartOptions) (Part, error)
	// CompleteMultipart makes the object visible from the given parts, in order.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (ObjectInfo, error)
	// AbortMultipart discards an upload and its parts.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// ListMultipartUploads lists incomplete uploads whose key starts with prefix.
	ListMultipartUploads(ctx context.Context, prefix string) ([]MultipartUpload, error)
}
