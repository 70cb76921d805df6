package s3fault

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// Limits of the misdirect action's own upstream requests.
const (
	// misdirectPageKeys is the max-keys of each listing page.
	misdirectPageKeys = 1000
	// misdirectMaxPages bounds the listing: at most the first 10,000 keys
	// under the prefix are candidates.
	misdirectMaxPages = 10
	// misdirectMaxListBody bounds one listing page's XML.
	misdirectMaxListBody = 64 << 20
	// misdirectMaxErrBody bounds the error document read from a failed
	// request, for the log.
	misdirectMaxErrBody = 4 << 10
	// defaultRegion is the signing region when neither the credentials nor
	// the client's signature name one.
	defaultRegion = "us-east-1"
	// emptySHA256 is the SHA-256 of an empty payload, in hex.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// errUpstreamStatus marks a layer-made upstream request that got an
// unexpected status.
var errUpstreamStatus = errors.New("s3fault: unexpected upstream status")

// misdirect answers a GetObject with another object under the requested
// key's collection prefix. With no other object it takes the hit back and
// forwards the request; when the layer's own requests fail, or the other
// GET is not a 2xx, it forwards the request (the hit stays fired but not
// injected).
func (p *Proxy) misdirect(w http.ResponseWriter, r *http.Request, st *reqState, f *firing) {
	req := st.req
	region := p.signingRegion(r)
	prefix := collectionPrefix(req.Key, f.action.PrefixDepth)
	keys, err := p.listOthers(r, req.Bucket, prefix, req.Key, region)
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		p.log.Warn("s3fault misdirect: cannot list the collection, forwarding unchanged", "rule", f.ruleID,
			"bucket", req.Bucket, "key", req.Key, "prefix", prefix, "err", err)
		p.forward(w, r, st, p.rp)
		return
	}
	if len(keys) == 0 {
		p.engine.unfire(f)
		st.setFault(nil)
		p.log.Debug("s3fault misdirect: no other object under the prefix, forwarding unchanged", "rule", f.ruleID,
			"bucket", req.Bucket, "key", req.Key, "prefix", prefix)
		p.forward(w, r, st, p.rp)
		return
	}
	other := keys[f.rng().IntN(len(keys))]
	resp, err := p.getOther(r, req.Bucket, other, region)
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		p.log.Warn("s3fault misdirect: cannot read the other object, forwarding unchanged", "rule", f.ruleID,
			"bucket", req.Bucket, "key", req.Key, "other", other, "err", err)
		p.forward(w, r, st, p.rp)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// E.g. 412 for an If-Match of the requested object, 416 for a
		// range past the other object's end, or 404 for an object deleted
		// since the listing.
		p.log.Debug("s3fault misdirect: the other object answered an error, forwarding unchanged", "rule", f.ruleID,
			"bucket", req.Bucket, "key", req.Key, "other", other, "status", resp.StatusCode)
		p.forward(w, r, st, p.rp)
		return
	}
	p.engine.forwarded(req.Op)
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	// Connection-level headers are not passed on.
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade"} {
		h.Del(k)
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	p.engine.injected(f, req.Op)
	p.log.Debug("s3fault misdirected", "rule", f.ruleID, "bucket", req.Bucket, "key", req.Key, "served", other,
		"status", resp.StatusCode)
	p.copyBody(w, r, resp.Body, st)
}

// copyBody streams body to w, flushing every chunk as the reverse proxy
// does. If the upstream body fails, the client connection is aborted, so
// the client sees a short body rather than a complete one.
func (p *Proxy) copyBody(w http.ResponseWriter, r *http.Request, body io.Reader, st *reqState) {
	buf := p.bufs.Get()
	defer p.bufs.Put(buf)
	rc := http.NewResponseController(w)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			// Not every writer can flush; the bytes still arrive.
			_ = rc.Flush()
		}
		if errors.Is(rerr, io.EOF) {
			return
		}
		if rerr != nil {
			if r.Context().Err() != nil {
				return
			}
			p.engine.upstreamError(st.req.Op)
			p.log.Warn("s3fault misdirect: upstream body failed", "op", st.req.Op, "bucket", st.req.Bucket,
				"key", st.req.Key, "err", rerr)
			panic(http.ErrAbortHandler)
		}
	}
}

// collectionPrefix returns the prefix of key the other object is picked
// under: up to and including the last '/' for depth 0, else up to and
// including the depth-th '/' (the last one when key has fewer).
func collectionPrefix(key string, depth int) string {
	if depth <= 0 {
		return key[:strings.LastIndexByte(key, '/')+1]
	}
	end := 0
	for range depth {
		i := strings.IndexByte(key[end:], '/')
		if i < 0 {
			break
		}
		end += i + 1
	}
	return key[:end]
}

// listBucketV2Result is the part of a ListObjectsV2 answer the layer reads.
type listBucketV2Result struct {
	Contents []struct {
		Key string `xml:"Key"`
	} `xml:"Contents"`
	IsTruncated           bool   `xml:"IsTruncated"`
	NextContinuationToken string `xml:"NextContinuationToken"`
}

// listOthers lists the keys under prefix in bucket, except exclude and
// folder markers (keys ending in '/'), sorted, from at most the first
// misdirectMaxPages pages.
func (p *Proxy) listOthers(r *http.Request, bucket, prefix, exclude, region string) ([]string, error) {
	var keys []string
	token := ""
	for range misdirectMaxPages {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}, "max-keys": {strconv.Itoa(misdirectPageKeys)}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		res, err := p.listPage(r, bucket, q, region)
		if err != nil {
			return nil, err
		}
		for _, c := range res.Contents {
			if c.Key != exclude && !strings.HasSuffix(c.Key, "/") {
				keys = append(keys, c.Key)
			}
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			break
		}
		token = res.NextContinuationToken
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// listPage sends one ListObjectsV2 request.
func (p *Proxy) listPage(r *http.Request, bucket string, q url.Values, region string) (listBucketV2Result, error) {
	resp, err := p.upstreamGet(r, "/"+bucket+"/", q, nil, region)
	if err != nil {
		return listBucketV2Result{}, fmt.Errorf("list %s prefix %q: %w", bucket, q.Get("prefix"), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, misdirectMaxErrBody))
		return listBucketV2Result{}, fmt.Errorf("list %s prefix %q: %w %s: %s", bucket, q.Get("prefix"),
			errUpstreamStatus, resp.Status, msg)
	}
	var res listBucketV2Result
	if err := xml.NewDecoder(io.LimitReader(resp.Body, misdirectMaxListBody)).Decode(&res); err != nil {
		return listBucketV2Result{}, fmt.Errorf("list %s prefix %q: decode: %w", bucket, q.Get("prefix"), err)
	}
	return res, nil
}

// getOther sends the client's GET for key instead of the requested key:
// same range, conditions and response-* overrides, signed by the layer.
func (p *Proxy) getOther(r *http.Request, bucket, key, region string) (*http.Response, error) {
	q := url.Values{}
	for k, v := range r.URL.Query() {
		if k == "partNumber" || strings.HasPrefix(k, "response-") {
			q[k] = v
		}
	}
	// The range, the conditions and the SSE-C key carry over.
	hdr := http.Header{}
	for _, k := range []string{
		"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
		"X-Amz-Checksum-Mode",
		"X-Amz-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Server-Side-Encryption-Customer-Key",
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5",
	} {
		if v, ok := r.Header[k]; ok {
			hdr[k] = v
		}
	}
	resp, err := p.upstreamGet(r, "/"+bucket+"/"+key, q, hdr, region)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return resp, nil
}

// upstreamGet sends a GET for path (unescaped, path-style) and query to the
// upstream, with hdr, signed with the layer's credentials (SigV4, for
// region), bound to the client request's context.
func (p *Proxy) upstreamGet(r *http.Request, path string, q url.Values, hdr http.Header, region string) (*http.Response, error) {
	u := *p.upstream
	u.Path = path
	// The signature covers the path as S3 encodes it: send exactly that.
	u.RawPath = s3utils.EncodePath(path)
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	signed := signer.SignV4(*req, p.creds.AccessKey, p.creds.SecretKey, "", region)
	resp, err := p.client.Do(signed)
	if err != nil {
		return nil, fmt.Errorf("upstream request: %w", err)
	}
	return resp, nil
}

// signingRegion is the region the layer signs for: the configured one, else
// the one in the client's own signature (header or presigned query), else
// us-east-1.
func (p *Proxy) signingRegion(r *http.Request) string {
	if p.creds.Region != "" {
		return p.creds.Region
	}
	var cred string
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "AWS4-HMAC-SHA256") {
		if _, rest, ok := strings.Cut(a, "Credential="); ok {
			cred, _, _ = strings.Cut(rest, ",")
		}
	} else {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	// <access key>/<date>/<region>/<service>/aws4_request
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) >= 5 && parts[len(parts)-3] != "" {
		return parts[len(parts)-3]
	}
	return defaultRegion
}
