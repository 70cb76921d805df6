// Package s3fault is an S3-aware fault layer: an HTTP reverse proxy that sits
// between an S3 client (tierd) and its S3 endpoint (Toxiproxy in front of
// MinIO) and injects the faults a TCP-level proxy cannot: S3 error responses
// (503 SlowDown with Retry-After, 500 InternalError, any other S3 error),
// added latency, truncated or bit-flipped response bodies, uploads whose
// connection is cut after a number of request-body bytes, and misdirected
// GETs answered with another object of the same collection (a lagging
// replica or a mixed-up cache; see [Misdirect]).
//
// Every request is classified into an S3 operation ([Op]) from its method,
// path (path-style addressing: the bucket is the first path segment) and
// query. [Rule] values select requests by operation, bucket and key pattern,
// decide with a [Trigger] which of the matching requests are hit (the next N,
// every Nth, a seeded probability, or all), and apply one [Action]. The layer
// counts every request it sees, forwards and faults ([Stats]), and keeps a
// request journal: one [Entry] per request with its arrival time,
// operation, key, the rule that fired, the status sent and the S3 error
// code ([Proxy.Journal], [Client.Journal]). The journal is a ring of the
// last requests, [DefaultJournalSize] unless [WithJournalSize] says
// otherwise; a stats reset and a full reset empty it.
//
// Forwarded requests keep the client's own SigV4 signature; the layer needs
// credentials of its own ([WithCredentials]) only for misdirected GETs, which
// list the collection and read another object.
//
// The pieces:
//   - [Proxy] is the S3-side http.Handler and owns the rules, counters and
//     journal.
//   - [NewControlHandler] serves the JSON control API for a Proxy.
//   - [Client] is the typed Go client of the control API.
//   - cmd/s3faultd runs both in one process (one container).
//
// See README.md in this folder for the rule model and the HTTP endpoints.
package s3fault
