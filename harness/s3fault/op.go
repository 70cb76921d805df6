package s3fault

import (
	"net/http"
	"net/url"
	"strings"
)

// Op is an S3 operation, as classified from a request's method, path and
// query. Its string value is the S3 API action name (e.g. "PutObject").
type Op string

// The operations the layer recognises. Requests it cannot map to one of them
// (bucket or object sub-resources such as ?tagging, ?acl or ?versioning,
// POST object uploads, requests without a bucket other than ListBuckets) are
// OpOther.
const (
	OpListBuckets             Op = "ListBuckets"
	OpHeadBucket              Op = "HeadBucket"
	OpMakeBucket              Op = "MakeBucket"
	OpDeleteBucket            Op = "DeleteBucket"
	OpGetBucketLocation       Op = "GetBucketLocation"
	OpListObjects             Op = "ListObjects"
	OpListObjectsV2           Op = "ListObjectsV2"
	OpListMultipartUploads    Op = "ListMultipartUploads"
	OpDeleteObjects           Op = "DeleteObjects"
	OpPutObject               Op = "PutObject"
	OpCopyObject              Op = "CopyObject"
	OpGetObject               Op = "GetObject"
	OpHeadObject              Op = "HeadObject"
	OpDeleteObject            Op = "DeleteObject"
	OpCreateMultipartUpload   Op = "CreateMultipartUpload"
	OpUploadPart              Op = "UploadPart"
	OpUploadPartCopy          Op = "UploadPartCopy"
	OpCompleteMultipartUpload Op = "CompleteMultipartUpload"
	OpAbortMultipartUpload    Op = "AbortMultipartUpload"
	OpListParts               Op = "ListParts"
	OpOther                   Op = "Other"
)

// AllOps lists every Op the classifier can return, OpOther last.
func AllOps() []Op {
	return []Op{
		OpListBuckets, OpHeadBucket, OpMakeBucket, OpDeleteBucket, OpGetBucketLocation,
		OpListObjects, OpListObjectsV2, OpListMultipartUploads, OpDeleteObjects,
		OpPutObject, OpCopyObject, OpGetObject, OpHeadObject, OpDeleteObject,
		OpCreateMultipartUpload, OpUploadPart, OpUploadPartCopy,
		OpCompleteMultipartUpload, OpAbortMultipartUpload, OpListParts, OpOther,
	}
}

// Valid reports whether op is one of the operations in [AllOps].
func (op Op) Valid() bool {
	for _, o := range AllOps() {
		if o == op {
			return true
		}
	}
	return false
}

// Request is what the classifier extracts from an S3 request.
type Request struct {
	// Op is the S3 operation.
	Op Op
	// Bucket is the first path segment ("" for ListBuckets).
	Bucket string
	// Key is the object key: the decoded path after the bucket, without the
	// separating slash ("" for bucket-level requests).
	Key string
}

// Query parameters that list requests may carry without becoming another
// operation.
var listParams = map[string]bool{
	"prefix": true, "delimiter": true, "marker": true, "max-keys": true,
	"list-type": true, "continuation-token": true, "start-after": true,
	"fetch-owner": true, "encoding-type": true, "metadata": true,
	"key-marker": true, "upload-id-marker": true, "max-uploads": true,
	"max-parts": true, "part-number-marker": true,
}

// Query parameters that object reads and writes may carry without becoming
// another operation.
var objectParams = map[string]bool{
	"versionid": true, "partnumber": true, "uploadid": true,
	"max-parts": true, "part-number-marker": true,
}

// Classify maps a path-style S3 request to its operation, bucket and key.
// Presigned-URL parameters (X-Amz-*), AWS SDK hints (x-id) and response-*
// overrides are ignored. It never fails: what it cannot map is OpOther.
func Classify(r *http.Request) Request {
	bucket, key := splitPath(r.URL.Path)
	q := r.URL.Query()
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""
	req := Request{Op: OpOther, Bucket: bucket, Key: key}

	if bucket == "" {
		if r.Method == http.MethodGet && len(significant(q, nil)) == 0 {
			req.Op = OpListBuckets
		}
		return req
	}
	if key == "" {
		req.Op = classifyBucket(r.Method, q)
		return req
	}

	_, hasUploadID := q["uploadId"]
	_, hasUploads := q["uploads"]
	_, hasPart := q["partNumber"]
	extra := significant(q, objectParams)
	switch r.Method {
	case http.MethodGet:
		switch {
		case len(extra) > 0:
		case hasUploadID:
			req.Op = OpListParts
		default:
			req.Op = OpGetObject
		}
	case http.MethodHead:
		if len(extra) == 0 {
			req.Op = OpHeadObject
		}
	case http.MethodPut:
		switch {
		case len(extra) > 0:
		case hasUploadID && hasPart && copySource:
			req.Op = OpUploadPartCopy
		case hasUploadID && hasPart:
			req.Op = OpUploadPart
		case hasUploadID || hasPart:
		case copySource:
			req.Op = OpCopyObject
		default:
			req.Op = OpPutObject
		}
	case http.MethodPost:
		switch {
		case hasUploads && len(significant(q, map[string]bool{"uploads": true})) == 0:
			req.Op = OpCreateMultipartUpload
		case hasUploadID && len(extra) == 0:
			req.Op = OpCompleteMultipartUpload
		}
	case http.MethodDelete:
		switch {
		case len(extra) > 0:
		case hasUploadID:
			req.Op = OpAbortMultipartUpload
		default:
			req.Op = OpDeleteObject
		}
	}
	return req
}

// classifyBucket maps a request on a bucket (no key) to its operation.
func classifyBucket(method string, q url.Values) Op {
	_, hasLocation := q["location"]
	_, hasUploads := q["uploads"]
	_, hasDelete := q["delete"]
	plain := len(significant(q, nil)) == 0
	switch method {
	case http.MethodHead:
		if plain {
			return OpHeadBucket
		}
	case http.MethodPut:
		if plain {
			return OpMakeBucket
		}
	case http.MethodDelete:
		if plain {
			return OpDeleteBucket
		}
	case http.MethodPost:
		if hasDelete && len(significant(q, map[string]bool{"delete": true})) == 0 {
			return OpDeleteObjects
		}
	case http.MethodGet:
		switch {
		case hasLocation && len(significant(q, map[string]bool{"location": true})) == 0:
			return OpGetBucketLocation
		case hasUploads && len(significant(q, addKey(listParams, "uploads"))) == 0:
			return OpListMultipartUploads
		case len(significant(q, listParams)) > 0:
			return OpOther
		case q.Get("list-type") == "2":
			return OpListObjectsV2
		default:
			return OpListObjects
		}
	}
	return OpOther
}

// significant returns the query keys that are neither ignorable (X-Amz-*
// presign parameters, x-id, response-* overrides) nor in allowed (compared
// case-insensitively).
func significant(q url.Values, allowed map[string]bool) []string {
	var out []string
	for k := range q {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "x-amz-"), lk == "x-id", strings.HasPrefix(lk, "response-"):
		case allowed[k], allowed[lk]:
		default:
			out = append(out, k)
		}
	}
	return out
}

// addKey returns a copy of m with k added.
func addKey(m map[string]bool, k string) map[string]bool {
	out := make(map[string]bool, len(m)+1)
	for key, v := range m {
		out[key] = v
	}
	out[k] = true
	return out
}

// splitPath splits a path-style S3 path into bucket and key. The key keeps
// every byte after the slash that follows the bucket, including further
// slashes.
func splitPath(p string) (bucket, key string) {
	p = strings.TrimPrefix(p, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}
