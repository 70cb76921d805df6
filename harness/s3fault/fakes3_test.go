package s3fault

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// seenRequest is what the fake S3 recorded about one request.
type seenRequest struct {
	Method     string
	Path       string
	RequestURI string
	RawQuery   string
	Host       string
	Header     http.Header
	BodyBytes  int64 // bytes of the request body as received on the wire
	BodyErr    error // non-nil when the body ended early
}

// fakeS3 is a tiny path-style S3 server: buckets, objects (GET with a
// Range), multipart uploads, ListObjectsV2, GetBucketLocation. It decodes
// aws-chunked bodies, keeps an object only when its body arrived complete,
// and records every request it received.
type fakeS3 struct {
	mu       sync.Mutex
	buckets  map[string]bool
	objects  map[string][]byte
	uploads  map[string]map[int][]byte
	uploadN  int
	requests []seenRequest
	srv      *httptest.Server
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{buckets: map[string]bool{}, objects: map[string][]byte{}, uploads: map[string]map[int][]byte{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) URL() string { return f.srv.URL }

func (f *fakeS3) seen() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeS3) object(bucket, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[bucket+"/"+key]
	return b, ok
}

func (f *fakeS3) putObject(bucket, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets[bucket] = true
	f.objects[bucket+"/"+key] = data
}

func (f *fakeS3) openUploads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.uploads)
}

type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

func (f *fakeS3) fail(w http.ResponseWriter, r *http.Request, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = xml.NewEncoder(w).Encode(errorDoc{Code: code, Message: code, Resource: r.URL.Path, RequestID: "FAKE"})
	}
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	counter := &countingReader{r: r.Body}
	raw, err := io.ReadAll(counter)
	rec := seenRequest{Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, RawQuery: r.URL.RawQuery, Host: r.Host,
		Header: r.Header.Clone(), BodyBytes: counter.n, BodyErr: err}
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	f.mu.Unlock()
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, "IncompleteBody")
		return
	}
	body, err := decodeAWSChunked(r, raw)
	if err != nil {
		f.fail(w, r, http.StatusBadRequest, "IncompleteBody")
		return
	}
	bucket, key := splitPath(r.URL.Path)
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case bucket == "":
		f.fail(w, r, http.StatusNotImplemented, "NotImplemented")
	case key == "":
		f.serveBucket(w, r, bucket, q.Has("location"))
	case !f.buckets[bucket]:
		f.fail(w, r, http.StatusNotFound, "NoSuchBucket")
	case r.Method == http.MethodPost && q.Has("uploads"):
		f.uploadN++
		id := fmt.Sprintf("upload-%d", f.uploadN)
		f.uploads[id] = map[int][]byte{}
		writeXML(w, struct {
			XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
			Bucket   string
			Key      string
			UploadID string `xml:"UploadId"`
		}{Bucket: bucket, Key: key, UploadID: id})
	case r.Method == http.MethodPut && q.Has("uploadId"):
		parts, ok := f.uploads[q.Get("uploadId")]
		if !ok {
			f.fail(w, r, http.StatusNotFound, "NoSuchUpload")
			return
		}
		n, _ := strconv.Atoi(q.Get("partNumber"))
		parts[n] = body
		w.Header().Set("ETag", etag(body))
	case r.Method == http.MethodPost && q.Has("uploadId"):
		parts, ok := f.uploads[q.Get("uploadId")]
		if !ok {
			f.fail(w, r, http.StatusNotFound, "NoSuchUpload")
			return
		}
		nums := slices.Sorted(func(yield func(int) bool) {
			for n := range parts {
				if !yield(n) {
					return
				}
			}
		})
		var all []byte
		for _, n := range nums {
			all = append(all, parts[n]...)
		}
		f.objects[bucket+"/"+key] = all
		delete(f.uploads, q.Get("uploadId"))
		writeXML(w, struct {
			XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
			Bucket  string
			Key     string
			ETag    string
		}{Bucket: bucket, Key: key, ETag: etag(all)})
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		delete(f.uploads, q.Get("uploadId"))
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut:
		f.objects[bucket+"/"+key] = body
		w.Header().Set("ETag", etag(body))
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		data, ok := f.objects[bucket+"/"+key]
		if !ok {
			f.fail(w, r, http.StatusNotFound, "NoSuchKey")
			return
		}
		w.Header().Set("ETag", etag(data))
		w.Header().Set("Last-Modified", time.Unix(0, 0).UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			// 206 with Content-Range, or 416.
			http.ServeContent(w, r, key, time.Unix(0, 0), bytes.NewReader(data))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(data)
		}
	case r.Method == http.MethodDelete:
		delete(f.objects, bucket+"/"+key)
		w.WriteHeader(http.StatusNoContent)
	default:
		f.fail(w, r, http.StatusNotImplemented, "NotImplemented")
	}
}

// serveBucket handles bucket-level requests; f.mu is held.
func (f *fakeS3) serveBucket(w http.ResponseWriter, r *http.Request, bucket string, location bool) {
	switch {
	case r.Method == http.MethodPut:
		f.buckets[bucket] = true
	case !f.buckets[bucket]:
		f.fail(w, r, http.StatusNotFound, "NoSuchBucket")
	case r.Method == http.MethodHead:
	case r.Method == http.MethodGet && location:
		writeXML(w, struct {
			XMLName xml.Name `xml:"LocationConstraint"`
			Value   string   `xml:",chardata"`
		}{Value: "us-east-1"})
	case r.Method == http.MethodGet:
		prefix := r.URL.Query().Get("prefix")
		type content struct {
			Key          string
			Size         int
			ETag         string
			LastModified string
		}
		var keys []string
		for k := range f.objects {
			if b, name, _ := strings.Cut(k, "/"); b == bucket && strings.HasPrefix(name, prefix) {
				keys = append(keys, name)
			}
		}
		sort.Strings(keys)
		res := struct {
			XMLName     xml.Name `xml:"ListBucketResult"`
			Name        string
			Prefix      string
			KeyCount    int
			MaxKeys     int
			IsTruncated bool
			Contents    []content
		}{Name: bucket, Prefix: prefix, KeyCount: len(keys), MaxKeys: 1000}
		for _, k := range keys {
			d := f.objects[bucket+"/"+k]
			res.Contents = append(res.Contents, content{Key: k, Size: len(d), ETag: etag(d),
				LastModified: time.Unix(0, 0).UTC().Format(time.RFC3339)})
		}
		writeXML(w, res)
	case r.Method == http.MethodDelete:
		delete(f.buckets, bucket)
		w.WriteHeader(http.StatusNoContent)
	default:
		f.fail(w, r, http.StatusNotImplemented, "NotImplemented")
	}
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

func etag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// decodeAWSChunked undoes aws-chunked encoding (signed or unsigned, with or
// without trailers) when the request uses it.
func decodeAWSChunked(r *http.Request, raw []byte) ([]byte, error) {
	sha := r.Header.Get("X-Amz-Content-Sha256")
	if !strings.HasPrefix(sha, "STREAMING-") && !strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		return raw, nil
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("aws-chunked header: %w", err)
		}
		sizeHex, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		size, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("aws-chunked size %q: %w", line, err)
		}
		if size == 0 {
			break
		}
		chunk := make([]byte, size)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, fmt.Errorf("aws-chunked data: %w", err)
		}
		out = append(out, chunk...)
		if crlf, err := br.ReadString('\n'); err != nil || crlf != "\r\n" {
			return nil, errors.New("aws-chunked: missing CRLF after chunk")
		}
	}
	if want := r.Header.Get("X-Amz-Decoded-Content-Length"); want != "" && want != strconv.Itoa(len(out)) {
		return nil, fmt.Errorf("aws-chunked: decoded %d bytes, header says %s", len(out), want)
	}
	return out, nil
}
