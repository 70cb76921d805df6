package s3fault

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, target string
		copySource     bool
		want           Request
	}{
		{"GET", "/", false, Request{Op: OpListBuckets}},
		{"GET", "/?x-id=ListBuckets", false, Request{Op: OpListBuckets}},
		{"HEAD", "/b", false, Request{Op: OpHeadBucket, Bucket: "b"}},
		{"PUT", "/b", false, Request{Op: OpMakeBucket, Bucket: "b"}},
		{"PUT", "/b/", false, Request{Op: OpMakeBucket, Bucket: "b"}},
		{"PUT", "/b?versioning", false, Request{Op: OpOther, Bucket: "b"}},
		{"DELETE", "/b", false, Request{Op: OpDeleteBucket, Bucket: "b"}},
		{"DELETE", "/b?policy", false, Request{Op: OpOther, Bucket: "b"}},
		{"GET", "/b?location=", false, Request{Op: OpGetBucketLocation, Bucket: "b"}},
		{"GET", "/b", false, Request{Op: OpListObjects, Bucket: "b"}},
		{"GET", "/b?prefix=a%2F&delimiter=%2F&max-keys=10", false, Request{Op: OpListObjects, Bucket: "b"}},
		{"GET", "/b?list-type=2&prefix=x&continuation-token=t&fetch-owner=true&metadata=true", false,
			Request{Op: OpListObjectsV2, Bucket: "b"}},
		{"GET", "/b?uploads&prefix=x", false, Request{Op: OpListMultipartUploads, Bucket: "b"}},
		{"GET", "/b?versions", false, Request{Op: OpOther, Bucket: "b"}},
		{"GET", "/b?tagging", false, Request{Op: OpOther, Bucket: "b"}},
		{"POST", "/b?delete", false, Request{Op: OpDeleteObjects, Bucket: "b"}},
		{"POST", "/b", false, Request{Op: OpOther, Bucket: "b"}},
		{"PUT", "/b/k", false, Request{Op: OpPutObject, Bucket: "b", Key: "k"}},
		{"PUT", "/b/dir/sub/k.parquet", false, Request{Op: OpPutObject, Bucket: "b", Key: "dir/sub/k.parquet"}},
		{"PUT", "/b/a%20b%2Bc", false, Request{Op: OpPutObject, Bucket: "b", Key: "a b+c"}},
		{"PUT", "/b//double", false, Request{Op: OpPutObject, Bucket: "b", Key: "/double"}},
		{"PUT", "/b/k?x-id=PutObject", false, Request{Op: OpPutObject, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k", true, Request{Op: OpCopyObject, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?tagging", false, Request{Op: OpOther, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?partNumber=2&uploadId=u", false, Request{Op: OpUploadPart, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?partNumber=2&uploadId=u", true, Request{Op: OpUploadPartCopy, Bucket: "b", Key: "k"}},
		{"PUT", "/b/k?partNumber=2", false, Request{Op: OpOther, Bucket: "b", Key: "k"}},
		{"GET", "/b/k", false, Request{Op: OpGetObject, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?versionId=1&response-content-type=x&partNumber=1", false, Request{Op: OpGetObject, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc", false, Request{Op: OpGetObject, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?uploadId=u&max-parts=10", false, Request{Op: OpListParts, Bucket: "b", Key: "k"}},
		{"GET", "/b/k?acl", false, Request{Op: OpOther, Bucket: "b", Key: "k"}},
		{"HEAD", "/b/k", false, Request{Op: OpHeadObject, Bucket: "b", Key: "k"}},
		{"HEAD", "/b/k?versionId=3", false, Request{Op: OpHeadObject, Bucket: "b", Key: "k"}},
		{"DELETE", "/b/k", false, Request{Op: OpDeleteObject, Bucket: "b", Key: "k"}},
		{"DELETE", "/b/k?uploadId=u", false, Request{Op: OpAbortMultipartUpload, Bucket: "b", Key: "k"}},
		{"DELETE", "/b/k?tagging", false, Request{Op: OpOther, Bucket: "b", Key: "k"}},
		{"POST", "/b/k?uploads", false, Request{Op: OpCreateMultipartUpload, Bucket: "b", Key: "k"}},
		{"POST", "/b/k?uploadId=u", false, Request{Op: OpCompleteMultipartUpload, Bucket: "b", Key: "k"}},
		{"POST", "/b/k?select&select-type=2", false, Request{Op: OpOther, Bucket: "b", Key: "k"}},
		{"PATCH", "/b/k", false, Request{Op: OpOther, Bucket: "b", Key: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, http.NoBody)
			if tt.copySource {
				r.Header.Set("X-Amz-Copy-Source", "/src/obj")
			}
			got := Classify(r)
			assert.Equal(t, tt.want, got)
			assert.True(t, got.Op.Valid())
		})
	}
}

func TestOpValid(t *testing.T) {
	for _, op := range AllOps() {
		assert.True(t, op.Valid(), op)
	}
	assert.False(t, Op("PutObjects").Valid())
	assert.False(t, Op("").Valid())
}
